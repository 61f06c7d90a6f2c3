"""Validation imports great_expectations without running altair's and scipy.stats' code (deepsynth.lazy),
and both still work for whoever uses them later in the process."""

import subprocess
import sys
import textwrap

from support.rendered import make_row, write_dataset

SCRIPT = textwrap.dedent(
    """
    import sys
    from deepsynth.data.rendered import RenderedDataset
    from deepsynth.validation import ValidationConfig, validate_dataset

    outcome = validate_dataset(RenderedDataset(sys.argv[1]), ValidationConfig(), sys.argv[2])
    assert "great_expectations" in sys.modules
    assert outcome.report.success and outcome.report.valid == 3, outcome.report
    ran = [name for name in ("altair.vegalite", "scipy.stats._stats_py") if name in sys.modules]
    assert not ran, f"validation ran deferred modules: {ran}"

    import altair
    import scipy.stats
    assert scipy.stats.norm.cdf(0.0) == 0.5 and altair.Chart.__name__ == "Chart"
    print("deferred and usable")
    """
)


def test_validation_defers_altair_and_scipy_stats_which_still_load_on_use(tmp_path):
    dataset = write_dataset(tmp_path / "rendered", [make_row() for _ in range(3)])
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(dataset.path), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "deferred and usable"
