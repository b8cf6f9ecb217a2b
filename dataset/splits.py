"""Seeded splits of a dataset into kept and held-out examples: stratified or by group.

Every function returns two sorted, disjoint index arrays, so callers can slice ``x`` and ``y``
with them and the held-out split never shares an example with the kept one.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Union

import numpy as np

from errors import DatasetError

logger = logging.getLogger(__name__)

#: Seed of every test split that a loader carves out itself. It is fixed, unlike
#: ``validation_seed``, so that all validation seeds are compared on the same test set.
TEST_SPLIT_SEED = 0

#: A held-out size: a fraction of the examples in (0, 1), or a number of examples (>= 1).
HeldOutSize = Union[float, int]


def held_out_count(size: HeldOutSize, total: int, setting_name: str) -> int:
    """Convert a fraction or count of ``total`` examples to a count, validating it.

    ``setting_name`` names the setting in the error, e.g. ``"validation_fraction"``.
    """
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise DatasetError(f"{setting_name}={size!r} is invalid: expected a fraction in (0, 1) "
                           "or a whole number of examples.")
    if isinstance(size, (float, np.floating)) and not float(size).is_integer():
        if not 0.0 < size < 1.0:
            raise DatasetError(f"{setting_name}={size!r} is invalid: a fraction must lie in "
                               "(0, 1).")
        count = int(round(size * total))
    else:
        count = int(size)

    if not 1 <= count < total:
        raise DatasetError(
            f"{setting_name}={size!r} selects {count} of {total} examples, but it must select "
            "at least one example and leave at least one. Use a larger fraction or a smaller "
            "count."
        )
    return count


def stratified_split(labels: np.ndarray, held_out: HeldOutSize, seed: int,
                     setting_name: str = "held-out size") -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into (kept, held out), keeping class proportions in both.

    ``held_out`` is a fraction in (0, 1) or a number of examples. The same labels and seed
    always give the same split. Raises `DatasetError` when the held-out split cannot contain
    every class or a class has a single example.
    """
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    count = held_out_count(held_out, len(labels), setting_name)
    indices = np.arange(len(labels))
    try:
        kept_indices, held_out_indices = train_test_split(
            indices, test_size=count, stratify=labels, random_state=seed, shuffle=True)
    except ValueError as error:
        # scikit-learn rejects a split smaller than the number of classes and classes with
        # fewer than two examples. The user fixes either by choosing another size.
        class_counts = np.bincount(labels) if labels.dtype.kind in "iu" else None
        raise DatasetError(
            f"Cannot make a stratified split of {count} of {len(labels)} examples ({setting_name}="
            f"{held_out!r}): {error}. Per-class counts: {class_counts}. Choose a size that gives "
            "every class at least one held-out example."
        ) from error
    return np.sort(kept_indices), np.sort(held_out_indices)


def group_split(groups: np.ndarray, held_out_fraction: float, seed: int,
                setting_name: str = "held-out fraction") -> tuple[np.ndarray, np.ndarray]:
    """Split example indices into (kept, held out) so that no group is in both.

    A seeded random choice of ``round(fraction * number of groups)`` groups (at least one)
    is held out, so the held-out share of examples is only close to the fraction when groups
    have similar sizes.
    """
    groups = np.asarray(groups)
    unique_groups = np.unique(groups)
    if len(unique_groups) < 2:
        raise DatasetError(f"Cannot split by group: all {len(groups)} examples belong to group "
                           f"{unique_groups.tolist()}, but at least two groups are needed.")
    if isinstance(held_out_fraction, bool) or not 0.0 < float(held_out_fraction) < 1.0:
        raise DatasetError(f"{setting_name}={held_out_fraction!r} is invalid: expected a "
                           "fraction in (0, 1).")

    count = min(max(1, int(round(held_out_fraction * len(unique_groups)))),
                len(unique_groups) - 1)
    rng = np.random.default_rng(seed)
    held_groups = rng.choice(unique_groups, size=count, replace=False)
    is_held = np.isin(groups, held_groups)
    logger.debug("Holding out groups %s", sorted(held_groups.tolist()))
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)


def duplicate_groups(examples: np.ndarray) -> np.ndarray:
    """Return a group id per example, equal for examples with identical bytes."""
    digests = b"".join(hashlib.sha1(np.ascontiguousarray(example).tobytes()).digest()
                       for example in examples)
    _, group_ids = np.unique(np.frombuffer(digests, dtype="S20"), return_inverse=True)
    return group_ids.reshape(-1)


def stratified_split_without_duplicates(examples: np.ndarray, labels: np.ndarray,
                                        held_out: HeldOutSize, seed: int,
                                        setting_name: str = "held-out size",
                                        ) -> tuple[np.ndarray, np.ndarray]:
    """Split like `stratified_split`, but keep identical examples on the same side.

    Some datasets contain exact copies of an image (Chars74K EnglishFnt renders many glyphs
    identically in several fonts), and a copy on each side would leak. Copies are grouped,
    each group is labelled with its first example's label, and the groups are split
    stratified by that label. ``held_out`` therefore counts distinct examples, so the
    held-out split contains the requested number of examples plus the extra copies.
    """
    groups = duplicate_groups(examples)
    unique_groups, first_indices, group_of_example = np.unique(
        groups, return_index=True, return_inverse=True)
    if len(unique_groups) < len(groups):
        logger.debug("%d of %d examples are copies of another example, kept in its split",
                     len(groups) - len(unique_groups), len(groups))

    _, held_groups = stratified_split(np.asarray(labels)[first_indices], held_out, seed,
                                      setting_name=setting_name)
    is_held = np.isin(group_of_example.reshape(-1), held_groups)
    return np.flatnonzero(~is_held), np.flatnonzero(is_held)
