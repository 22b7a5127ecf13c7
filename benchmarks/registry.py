"""The methods that the benchmark scripts know by name, each behind a factory.

A factory takes no argument and returns a fresh, unbuilt :class:`~benchmarks.protocol.
Method`. cvmatch itself is reached through ``benchmarks/bench_cvmatch.py``; when that
module or cvmatch cannot be imported, its entries are left out and
:func:`method_factories` says why in its second return value.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.protocol import Method

MethodFactory = Callable[[], Method]

CVMATCH_PRESETS = ("orb", "rootsift")


def cvmatch_factories(threads: int = 1) -> tuple[dict[str, MethodFactory], str]:
    """Factories for cvmatch's presets, or none and the reason of the failed import.

    Parameters
    ----------
    threads : int
        Processes for cvmatch's feature extraction: the same number of cores the
        baselines are given, so that build times compare.
    """
    try:
        from benchmarks.bench_cvmatch import CvmatchMethod
    except Exception as exc:  # any failure to import means: measure without cvmatch
        return {}, f"cvmatch skipped: benchmarks.bench_cvmatch did not import ({exc})"
    return {
        f"cvmatch-{preset}": (
            lambda preset=preset: CvmatchMethod(preset, n_jobs=threads)
        )
        for preset in CVMATCH_PRESETS
    }, ""


def baseline_factories(
    training_budget: float, threads: int = 1
) -> dict[str, MethodFactory]:
    """Factories for every baseline, imported lazily so that torch loads on demand.

    Parameters
    ----------
    training_budget : float
        Wall seconds that Deep Ranking may train for.
    threads : int
        Threads of ONNX Runtime, which reads no environment variable for them.
    """

    def brute_force(features: str) -> MethodFactory:
        def make() -> Method:
            from benchmarks.methods.brute_force import BruteForceMethod

            return BruteForceMethod(features)

        return make

    def perceptual_hash() -> Method:
        from benchmarks.methods.perceptual_hash import PerceptualHashMethod

        return PerceptualHashMethod()

    def global_embedding() -> Method:
        from benchmarks.methods.global_embedding import GlobalEmbeddingMethod

        return GlobalEmbeddingMethod()

    def deep_ranking() -> Method:
        from benchmarks.methods.deep_ranking import DeepRankingMethod

        return DeepRankingMethod(budget_seconds=training_budget)

    def learned_local() -> Method:
        from benchmarks.methods.learned_local import LearnedLocalMethod

        return LearnedLocalMethod()

    def copy_detection() -> Method:
        from benchmarks.methods.copy_detection import CopyDetectionMethod

        return CopyDetectionMethod(threads)

    def learned_local_on_copy_detection() -> Method:
        from benchmarks.methods.copy_detection import CopyDetectionMethod
        from benchmarks.methods.learned_local import LearnedLocalMethod

        return LearnedLocalMethod(
            shortlister=lambda: CopyDetectionMethod(threads), shortlister_name="SSCD"
        )

    return {
        "brute-orb": brute_force("orb"),
        "brute-rootsift": brute_force("rootsift"),
        "phash": perceptual_hash,
        "efficientnet": global_embedding,
        "deep-ranking": deep_ranking,
        "xfeat": learned_local,
        "sscd": copy_detection,
        "xfeat-sscd": learned_local_on_copy_detection,
    }


def method_factories(
    training_budget: float, threads: int = 1
) -> tuple[dict[str, MethodFactory], str]:
    """Every known method by name: cvmatch's presets first, then the baselines.

    Parameters
    ----------
    training_budget : float
        Wall seconds that Deep Ranking may train for.
    threads : int
        Cores each method may use (see :func:`cvmatch_factories`).

    Returns
    -------
    factories : dict of str to callable
    note : str
        Empty, or why cvmatch is missing.
    """
    factories, note = cvmatch_factories(threads)
    return factories | baseline_factories(training_budget, threads), note
