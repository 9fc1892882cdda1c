"""Recorded datasets as a source: a plain `.npz` with a JSON sidecar, or a local Minari dataset.

`load_dataset(PATH)` reads and checks the file, splits it by episode into
train and held-out test, writes both splits into the transition cache, and
registers the dataset as the environment `data/<name>`: from there `check`,
`fit` and `synth` work on it as on any other source. The formats are in
docs/datasets.md; `save_npz` writes the `.npz` layout.

The `.npz` arrays, N rows in time order (an episode ends at a row whose
`terminations` or `truncations` is true, and at the last row):
  observations [N, *obs_shape], actions [N] or [N, action_dim], rewards [N],
  next_observations [N, *obs_shape], terminations [N], truncations [N].
The sidecar `<same stem>.json`: {"observation_space": SPACE, "action_space":
SPACE, "description": optional text}, a SPACE being {"type": "Box", "shape":
[...], "low": ..., "high": ...} or {"type": "Discrete", "n": n, "start": 0}.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from cwm_jax import envs
from cwm_jax.data.cache import FORMAT_VERSION, write_split_file
from cwm_jax.data.dataset_spaces import ActionContract, action_contract, observation_size, space_json
from cwm_jax.data.transitions import SPLITS, Transitions, cache_path, determinism_finding
from cwm_jax.envs.recorded import SPEC_KEY, spec_fields
from cwm_jax.envs.spec import EnvSpec
from cwm_jax.errors import UsageError

__all__ = ["ARRAYS", "MINARI_PREFIX", "SPLIT_SEED", "DatasetError", "load_dataset", "save_npz", "split_episodes"]

ARRAYS = ("observations", "actions", "rewards", "next_observations", "terminations", "truncations")
MINARI_PREFIX = "minari/"
SPLIT_SEED = 0  # the permutation of episodes that decides train and test


class DatasetError(UsageError):
    """A dataset that cannot be read or does not hold what the documented format says."""


def save_npz(path: str | Path, *, observations, actions, rewards, next_observations, terminations, truncations,
             observation_space, action_space, description: str = "") -> Path:
    """Writes the documented `.npz` layout and its JSON sidecar (`path` with `.json`); returns the `.npz` path.

    Spaces are gymnasium spaces or the sidecar's dicts (module docstring).
    """
    path = Path(path).with_suffix(".npz")
    arrays = dict(observations=observations, actions=actions, rewards=rewards, next_observations=next_observations,
                  terminations=terminations, truncations=truncations)
    np.savez_compressed(path, **{name: np.asarray(value) for name, value in arrays.items()})
    sidecar = {"observation_space": space_json(observation_space), "action_space": space_json(action_space)}
    if description:
        sidecar["description"] = description
    path.with_suffix(".json").write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")
    return path


def load_dataset(source: str | Path, *, name: str | None = None, description: str | None = None) -> EnvSpec:
    """Reads, checks, splits and registers a dataset; returns its spec (`data/<name>`).

    Args:
      source: a `.npz` file (its sidecar next to it) or `minari/<dataset_id>`
        (a dataset in Minari's local folder, `MINARI_DATASETS_PATH`).
      name: the environment's name (default: the file's or dataset's name
        plus 8 hex digits of its content hash).
      description: the text for the LLM; default the sidecar's (or Minari's)
        "description", else none (synth then asks for one).

    Raises:
      DatasetError: a missing or malformed dataset (one line naming the problem).
    """
    where = str(source)
    if where.startswith(MINARI_PREFIX):
        arrays, sidecar, stem = _read_minari(where[len(MINARI_PREFIX):])
    else:
        arrays, sidecar, stem = _read_npz(Path(where))
    obs_dim, contract = _check(arrays, sidecar, where)
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays.values())
                            + json.dumps(sidecar, sort_keys=True).encode()).hexdigest()
    text = description if description is not None else str(sidecar.get("description") or "")
    spec = EnvSpec(
        name=name or f"{stem}-{digest[:8]}", gymnax_id="", obs_shape=(obs_dim,), state_from_obs=None,
        heuristic_policy=None, reference="", source="data", data_version=f"sha256:{digest[:16]}",
        description=text, docs_description=text,  # one text for both description levels
        **contract.spec_fields(),
    )
    rows = _rows(arrays, contract)
    episode, split_of = split_episodes(arrays["terminations"] | arrays["truncations"], where)
    determinism = determinism_finding(spec, rows, spec.id)
    _cache_splits(spec, rows, episode, split_of, origin=where, determinism=determinism)
    return envs.register(spec, overwrite=True)


def split_episodes(ends: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(episode int64 [N], split int32 [N]): each row's episode, and its split (0 train, 1 test).

    Episodes end where `ends` [N] is true and at the last row. A seeded
    permutation (`SPLIT_SEED`) puts ceil(E / 2) of the E episodes in train and
    the rest in test: whole episodes, so the splits share no state.

    Raises:
      DatasetError: fewer than two episodes (no held-out split possible).
    """
    episode = np.concatenate([[0], np.cumsum(ends[:-1])]).astype(np.int64)
    count = int(episode[-1]) + 1
    if count < 2:
        raise DatasetError(f"{where}: one episode only; a held-out split needs at least two "
                           "(an episode ends at a row whose terminations or truncations is true)")
    order = np.random.default_rng(SPLIT_SEED).permutation(count)
    test = np.zeros(count, bool)
    test[order[math.ceil(count / 2):]] = True
    return episode, test[episode].astype(np.int32)


def _read_npz(path: Path) -> tuple[dict[str, np.ndarray], dict, str]:
    if path.suffix != ".npz":
        raise DatasetError(f"{path}: a dataset is a .npz file with a .json sidecar, or minari/<dataset_id>")
    sidecar_path = path.with_suffix(".json")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [name for name in ARRAYS if name not in archive.files]
            if missing:
                raise DatasetError(f"{path}: missing array(s) {', '.join(missing)}; a dataset holds "
                                   f"{', '.join(ARRAYS)} (docs/datasets.md)")
            arrays = {name: archive[name] for name in ARRAYS}
    except DatasetError:
        raise
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read it as a .npz file: {exc}") from None
    try:
        sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{path}: its sidecar {sidecar_path} is missing; it names the observation and action "
                           "spaces (docs/datasets.md)") from None
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{sidecar_path}: not readable JSON: {exc}") from None
    if not isinstance(sidecar, dict):
        raise DatasetError(f"{sidecar_path}: must hold a JSON object with observation_space and action_space")
    return arrays, sidecar, path.stem


def _read_minari(dataset_id: str) -> tuple[dict[str, np.ndarray], dict, str]:
    try:
        import minari
    except ImportError:
        raise DatasetError("minari datasets need the [minari] extra: pip install 'cwm-jax[minari]'") from None
    from cwm_jax.data.dataset_spaces import flatten_batch

    try:
        dataset = minari.load_dataset(dataset_id)
    except Exception as exc:  # minari raises several kinds for an unknown or unreadable local dataset
        raise DatasetError(f"minari/{dataset_id}: cannot load it from Minari's local datasets: {exc}") from None
    parts: dict[str, list] = {name: [] for name in ARRAYS}
    for episode in dataset.iterate_episodes():
        observations = flatten_batch(dataset.observation_space, episode.observations)
        parts["observations"].append(observations[:-1])
        parts["next_observations"].append(observations[1:])
        parts["actions"].append(np.asarray(episode.actions))
        parts["rewards"].append(np.asarray(episode.rewards))
        terminations = np.asarray(episode.terminations, bool)
        truncations = np.asarray(episode.truncations, bool).copy()
        truncations[-1] |= not terminations[-1]  # the episode ends here in any case
        parts["terminations"].append(terminations)
        parts["truncations"].append(truncations)
    if not parts["rewards"]:
        raise DatasetError(f"minari/{dataset_id}: the dataset holds no episodes")
    arrays = {name: np.concatenate(values) for name, values in parts.items()}
    obs_dim = arrays["observations"].shape[1]
    sidecar = {"observation_space": {"type": "Box", "shape": [obs_dim]},
               "action_space": space_json(dataset.action_space),
               "description": dataset.storage.metadata.get("description") or ""}
    return arrays, sidecar, dataset_id.replace("/", "_")


def _check(arrays: dict[str, np.ndarray], sidecar: dict, where: str) -> tuple[int, ActionContract]:
    """(obs_dim, the action contract) the sidecar describes, after checking that the arrays agree with it."""
    for key in ("observation_space", "action_space"):
        if key not in sidecar:
            raise DatasetError(f"{where}: the sidecar has no {key!r} (docs/datasets.md)")
    obs_shape = observation_size(sidecar["observation_space"], where)
    contract = action_contract(sidecar["action_space"], where)
    n = len(arrays["rewards"]) if np.ndim(arrays["rewards"]) else 0
    if n == 0:
        raise DatasetError(f"{where}: rewards must be a non-empty [N] array")
    for name, value in arrays.items():
        if value.shape[:1] != (n,):
            raise DatasetError(f"{where}: {name} has {value.shape[0] if value.ndim else 'no'} rows, rewards has {n}: "
                               "every array has one row per transition")
        if value.dtype.kind not in "biuf":
            raise DatasetError(f"{where}: {name} must be numeric, got dtype {value.dtype}")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            row = int(np.flatnonzero(~np.isfinite(value.reshape(n, -1)).all(axis=1))[0])
            raise DatasetError(f"{where}: {name} holds NaN or infinity (first at row {row})")
    for name in ("observations", "next_observations"):
        if int(np.prod(arrays[name].shape[1:])) != obs_shape:
            raise DatasetError(f"{where}: {name} rows have shape {arrays[name].shape[1:]}, the observation space "
                               f"has {obs_shape} values")
    for name in ("rewards", "terminations", "truncations"):
        if arrays[name].ndim != 1:
            raise DatasetError(f"{where}: {name} must be [N], got shape {arrays[name].shape}")
    for name in ("terminations", "truncations"):
        if not np.isin(arrays[name], (0, 1)).all():
            raise DatasetError(f"{where}: {name} must hold booleans (or 0/1)")
        arrays[name] = arrays[name].astype(bool)
    contract.check_actions(arrays["actions"], where)
    return obs_shape, contract


def _rows(arrays: dict[str, np.ndarray], contract: ActionContract) -> dict[str, np.ndarray]:
    n = len(arrays["rewards"])
    return {
        "state": arrays["observations"].reshape(n, -1).astype(np.float32),
        "action": contract.to_contract(arrays["actions"]),
        "next_state": arrays["next_observations"].reshape(n, -1).astype(np.float32),
        "reward": arrays["rewards"].astype(np.float32),
        "done": arrays["terminations"].astype(bool),
    }


def _cache_splits(spec: EnvSpec, rows: dict[str, np.ndarray], episode: np.ndarray, split_of: np.ndarray, *,
                  origin: str, determinism: str) -> None:
    for index, split in enumerate(SPLITS):
        mask = split_of == index
        numbers, within = np.unique(episode[mask], return_inverse=True)  # episodes renumbered 0.. in the split
        data = Transitions(**{k: v[mask] for k, v in rows.items()}, episode=within.astype(np.int32))
        meta: dict[str, Any] = {
            "format_version": FORMAT_VERSION, "env": spec.id, "data_version": spec.data_version, "split": split,
            "origin": origin, "policy": "recorded by the dataset's author", "n_transitions": len(data),
            "n_episodes": len(numbers), "n_terminations": int(data.done.sum()),
            "determinism": determinism,
            SPEC_KEY: spec_fields(spec),
        }
        write_split_file(cache_path(spec, split), data._asdict(), meta)
