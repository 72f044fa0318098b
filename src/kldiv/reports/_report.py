"""The result of :func:`kldiv.reports.compare_logits`: numbers, text, a rich table, an HTML page."""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from kldiv.reports._stats import Moments, Summary

__all__ = ["ComparisonReport", "build_report"]

KL_PERCENTILES = (99.9, 99.0, 95.0, 90.0, 10.0, 5.0, 1.0, 0.1)
"""The KL percentiles of llama.cpp's report (besides the median, minimum and maximum)."""

DELTA_P_PERCENTILES = (99.9, 99.0, 95.0, 90.0, 75.0, 25.0, 10.0, 5.0, 1.0, 0.1)
"""The Δp percentiles of llama.cpp's report (besides the median, minimum and maximum)."""


def _key(percent: float) -> str:
    return f"{percent:g}"


@dataclass(frozen=True, eq=False)
class ComparisonReport:
    r"""How far a test model's next-token distributions are from a base model's.

    The statistics of llama.cpp's ``llama-perplexity --kl-divergence``, over
    ``n_tokens`` positions. KL and negative log-likelihoods are in ``unit``;
    probabilities (Δp, top-1 agreement) are fractions in [0, 1]; every
    ``*_stderr`` is the standard error of the quantity before it (sample
    standard deviation over :math:`\sqrt{n}`, delta method for functions of
    means). Percentiles are exact (linear interpolation between order
    statistics, as ``numpy.percentile`` and llama.cpp) when the per-token
    values were kept, and None otherwise.

    Attributes:
        n_tokens: positions compared.
        n_masked: positions left out (``ignore_index`` tokens or a False ``mask``).
        vocab_size: the vocabulary size ``V``.
        dtype: the logits' dtype (``"float32 / float16"`` when base and test differ).
        reference: ``"tokens"`` when Δp refers to the given next tokens,
            ``"base argmax"`` when it refers to the base model's most probable token.
        unit: ``"nats"``, ``"bits"``, ... (the ``base`` of the logarithm).
        kl_mean: mean per-token :math:`D(P_{base} \| P_{test})`.
        kl_stderr: its standard error.
        kl_median: median per-token KL.
        kl_min: smallest per-token KL.
        kl_max: largest per-token KL.
        kl_percentiles: ``{"99.9": ..., "99": ..., ..., "0.1": ...}``.
        kl_infinite: positions whose KL is ``+inf`` (the test model gives no
            mass to a token the base model can emit).
        same_top: fraction of positions where both models' argmax agree.
        same_top_stderr: its standard error, :math:`\sqrt{f(1-f)/(n-1)}`.
        delta_p_mean: mean of :math:`\Delta p = p_{test}(t) - p_{base}(t)`.
        delta_p_stderr: its standard error.
        delta_p_median: median Δp.
        delta_p_min: smallest Δp.
        delta_p_max: largest Δp.
        delta_p_percentiles: ``{"99.9": ..., ..., "75": ..., "25": ..., "0.1": ...}``.
        delta_p_rms: :math:`\sqrt{\overline{\Delta p^2}}`.
        delta_p_rms_stderr: its standard error, :math:`\mathrm{SE}(\Delta p^2) / (2\,\mathrm{RMS})`.
        nll_base: mean :math:`-\log p_{base}(t)` (None without tokens).
        nll_base_stderr: its standard error.
        nll_test: mean :math:`-\log p_{test}(t)`.
        nll_test_stderr: its standard error.
        ppl_base: :math:`e^{\overline{\mathrm{NLL}}_{base}}` (in nats whatever the unit).
        ppl_base_stderr: its standard error.
        ppl_test: the test model's perplexity.
        ppl_test_stderr: its standard error.
        log_ppl_ratio: :math:`\log(\mathrm{PPL}_{test}/\mathrm{PPL}_{base})`, the mean
            of the per-token NLL differences, in ``unit``.
        log_ppl_ratio_stderr: its standard error (paired: the correlation counts).
        ppl_ratio: :math:`\mathrm{PPL}_{test}/\mathrm{PPL}_{base}`.
        ppl_ratio_stderr: its standard error.
        ppl_difference: :math:`\mathrm{PPL}_{test} - \mathrm{PPL}_{base}`.
        ppl_difference_stderr: its standard error.
        nll_correlation: Pearson correlation of the per-token NLLs of the two models.
        token_kl: the per-token KL of the included positions, float64, in order
            (None when not kept); 8 bytes a position.
        token_delta_p: the per-token Δp likewise.

    Examples:
        >>> import numpy as np
        >>> from kldiv.reports import compare_logits
        >>> base = np.log([[0.5, 0.5], [0.9, 0.1]])
        >>> report = compare_logits(base, base)
        >>> report.kl_mean, report.same_top, report.delta_p_rms
        (0.0, 1.0, 0.0)
    """

    n_tokens: int
    n_masked: int
    vocab_size: int
    dtype: str
    reference: str
    unit: str
    kl_mean: float
    kl_stderr: float
    kl_median: float | None
    kl_min: float
    kl_max: float
    kl_percentiles: dict[str, float] | None
    kl_infinite: int
    same_top: float
    same_top_stderr: float
    delta_p_mean: float
    delta_p_stderr: float
    delta_p_median: float | None
    delta_p_min: float
    delta_p_max: float
    delta_p_percentiles: dict[str, float] | None
    delta_p_rms: float
    delta_p_rms_stderr: float
    nll_base: float | None = None
    nll_base_stderr: float | None = None
    nll_test: float | None = None
    nll_test_stderr: float | None = None
    ppl_base: float | None = None
    ppl_base_stderr: float | None = None
    ppl_test: float | None = None
    ppl_test_stderr: float | None = None
    log_ppl_ratio: float | None = None
    log_ppl_ratio_stderr: float | None = None
    ppl_ratio: float | None = None
    ppl_ratio_stderr: float | None = None
    ppl_difference: float | None = None
    ppl_difference_stderr: float | None = None
    nll_correlation: float | None = None
    token_kl: np.ndarray | None = field(default=None, repr=False)
    token_delta_p: np.ndarray | None = field(default=None, repr=False)

    def to_dict(self, *, per_token: bool = False) -> dict[str, Any]:
        """The report as plain data (JSON-ready but for inf/NaN floats).

        Args:
            per_token: also include ``token_kl`` and ``token_delta_p`` as lists.

        Returns:
            A dict of every field; the per-token arrays only with ``per_token``.

        Examples:
            >>> import numpy as np
            >>> from kldiv.reports import compare_logits
            >>> compare_logits(np.zeros((3, 4)), np.zeros((3, 4))).to_dict()["kl_mean"]
            0.0
        """
        data: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name.startswith("token_"):
                if per_token:
                    data[item.name] = None if value is None else value.tolist()
                continue
            data[item.name] = dict(value) if isinstance(value, dict) else value
        return data

    @property
    def has_tokens(self) -> bool:
        """Whether the report holds perplexity statistics (next tokens were given)."""
        return self.nll_base is not None

    def sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """The report as titled sections of ``(label, formatted value)`` rows."""
        out = []
        if self.has_tokens:
            out.append(("Perplexity statistics", _perplexity_rows(self)))
        out.append((f"KL divergence statistics ({self.unit})", _kl_rows(self)))
        out.append(("Token probability statistics", _probability_rows(self)))
        return out

    def header(self) -> str:
        """One line: what was compared."""
        masked = f" ({self.n_masked} masked)" if self.n_masked else ""
        ref = (
            "the given next tokens"
            if self.reference == "tokens"
            else "the base model's most probable token (no tokens given)"
        )
        return (
            f"{self.n_tokens} positions{masked}, vocabulary {self.vocab_size}, {self.dtype}; "
            f"Δp refers to {ref}"
        )

    def __str__(self) -> str:
        lines = [self.header()]
        for title, rows in self.sections():
            lines.append(f"====== {title} ======")
            width = max(len(label) for label, _ in rows)
            lines.extend(f"{label:<{width}} : {value}" for label, value in rows)
        return "\n".join(lines)

    def __rich__(self) -> Any:
        """A rich renderable: one table per section."""
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        tables = []
        for title, rows in self.sections():
            table = Table(title=title, title_justify="left", show_header=False)
            table.add_column("statistic")
            table.add_column("value", justify="right")
            for label, value in rows:
                table.add_row(Text(label), Text(value))  # no markup: '[nats]' is text
            tables.append(table)
        return Group(Text(self.header()), *tables)

    def to_html(self, path: str | Path) -> Path:
        """Writes a self-contained HTML page: the tables and histograms of per-token KL and Δp.

        The histograms are PNG images drawn with matplotlib and embedded in the
        page (base64), so the page is one file. Without kept per-token values
        the page has the tables only.

        Args:
            path: the file to write.

        Returns:
            The path written.

        Raises:
            ImportError: matplotlib is not installed (``pip install matplotlib``).

        Examples:
            >>> import numpy as np, tempfile, pathlib
            >>> from kldiv.reports import compare_logits
            >>> report = compare_logits(np.zeros((3, 4)), np.eye(3, 4))
            >>> out = report.to_html(pathlib.Path(tempfile.mkdtemp()) / "report.html")
            >>> "<img" in out.read_text()
            True
        """
        figures = _histogram_pngs(self) if self.token_kl is not None else []
        target = Path(path)
        target.write_text(_html_page(self, figures), encoding="utf-8")
        return target


# --- building the report ---------------------------------------------------------------------


def _interpolated(ordered: np.ndarray, percent: float) -> float:
    """Linear interpolation between order statistics (numpy.percentile's default, llama.cpp's).

    Equal neighbours (two ``+inf`` included) give their value rather than ``inf - inf``.
    """
    position = percent / 100.0 * (ordered.size - 1)
    low = math.floor(position)
    high = min(low + 1, ordered.size - 1)
    fraction = position - low
    a, b = float(ordered[low]), float(ordered[high])
    if fraction == 0.0 or a == b:
        return a
    return a + fraction * (b - a)


def _exact_percentiles(
    ordered: np.ndarray | None, percents: tuple[float, ...]
) -> dict[str, float] | None:
    if ordered is None:
        return None
    if ordered.size == 0:
        return {_key(q): math.nan for q in percents}
    return {_key(q): _interpolated(ordered, q) for q in percents}


def _median(ordered: np.ndarray | None) -> float | None:
    if ordered is None:
        return None
    return _interpolated(ordered, 50.0) if ordered.size else math.nan


def _scaled(value: float, scale: float) -> float:
    return value / scale


def _exp(value: float) -> float:
    """``e**value``, +inf beyond the float range (mean NLL above ~709 nats: math.exp raises)."""
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def _perplexity_fields(summary: Summary, scale: float) -> dict[str, float]:
    base, test, difference = summary.nll_base, summary.nll_test, summary.nll_difference
    n = base.count
    se_base, se_test, se_difference = base.stderr, test.stderr, difference.stderr
    ppl_base, ppl_test = _exp(base.average), _exp(test.average)
    log_ratio = difference.average
    if n >= 2 and not (base.positive_infinite or test.positive_infinite):
        covariance = (base.m2 + test.m2 - difference.m2) / (2.0 * (n - 1))
        denominator = math.sqrt(base.m2 * test.m2)
        correlation = (
            (base.m2 + test.m2 - difference.m2) / (2.0 * denominator) if denominator else math.nan
        )
        covariance_of_means = covariance / n
        se_ppl_test, se_ppl_base = ppl_test * se_test, ppl_base * se_base
        variance_difference = (  # products, not ** 2: a float's ** raises on overflow
            se_ppl_test * se_ppl_test
            + se_ppl_base * se_ppl_base
            - 2.0 * ppl_test * ppl_base * covariance_of_means
        )
        ppl_difference_stderr = math.sqrt(max(variance_difference, 0.0))
    else:
        correlation = math.nan
        ppl_difference_stderr = math.nan
    ppl_ratio = _exp(log_ratio)
    return {
        "nll_base": _scaled(base.average, scale),
        "nll_base_stderr": _scaled(se_base, scale),
        "nll_test": _scaled(test.average, scale),
        "nll_test_stderr": _scaled(se_test, scale),
        "ppl_base": ppl_base,
        "ppl_base_stderr": ppl_base * se_base,
        "ppl_test": ppl_test,
        "ppl_test_stderr": ppl_test * se_test,
        "log_ppl_ratio": _scaled(log_ratio, scale),
        "log_ppl_ratio_stderr": _scaled(se_difference, scale),
        "ppl_ratio": ppl_ratio,
        "ppl_ratio_stderr": ppl_ratio * se_difference,
        "ppl_difference": ppl_test - ppl_base,
        "ppl_difference_stderr": ppl_difference_stderr,
        "nll_correlation": correlation,
    }


def _rms(squares: Moments) -> tuple[float, float]:
    rms = math.sqrt(squares.average) if squares.count else math.nan
    stderr = 0.5 / rms * squares.stderr if rms > 0 else (0.0 if rms == 0 else math.nan)
    if rms == 0 and squares.count < 2:
        stderr = math.nan
    return rms, stderr


def build_report(
    summary: Summary,
    token_kl: np.ndarray | None,
    token_delta_p: np.ndarray | None,
    *,
    vocab_size: int,
    dtype: str,
    with_tokens: bool,
    log_base: float | None,
    unit: str,
) -> ComparisonReport:
    """The report of merged statistics and (optionally) the kept per-token values in nats."""
    scale = 1.0 if log_base is None else log_base
    n = summary.kl.count
    if token_kl is not None:
        token_kl = token_kl / scale if log_base is not None else token_kl
    sorted_kl = None if token_kl is None else np.sort(token_kl)
    sorted_delta_p = None if token_delta_p is None else np.sort(token_delta_p)
    same_top = summary.same_top / n if n else math.nan
    same_top_stderr = math.sqrt(same_top * (1.0 - same_top) / (n - 1)) if n > 1 else math.nan
    rms, rms_stderr = _rms(summary.delta_p_squared)
    perplexity = _perplexity_fields(summary, scale) if with_tokens else {}
    return ComparisonReport(
        n_tokens=n,
        n_masked=summary.masked,
        vocab_size=vocab_size,
        dtype=dtype,
        reference="tokens" if with_tokens else "base argmax",
        unit=unit,
        kl_mean=_scaled(summary.kl.average, scale),
        kl_stderr=_scaled(summary.kl.stderr, scale),
        kl_median=_median(sorted_kl),
        kl_min=_scaled(summary.kl.minimum, scale) if n else math.nan,
        kl_max=_scaled(summary.kl.maximum, scale) if n else math.nan,
        kl_percentiles=_exact_percentiles(sorted_kl, KL_PERCENTILES),
        kl_infinite=summary.kl.positive_infinite,
        same_top=same_top,
        same_top_stderr=same_top_stderr,
        delta_p_mean=summary.delta_p.average,
        delta_p_stderr=summary.delta_p.stderr,
        delta_p_median=_median(sorted_delta_p),
        delta_p_min=summary.delta_p.minimum if n else math.nan,
        delta_p_max=summary.delta_p.maximum if n else math.nan,
        delta_p_percentiles=_exact_percentiles(sorted_delta_p, DELTA_P_PERCENTILES),
        delta_p_rms=rms,
        delta_p_rms_stderr=rms_stderr,
        token_kl=token_kl,
        token_delta_p=token_delta_p,
        **perplexity,
    )


# --- text ------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 6) -> str:
    if value is None:
        return "n/a"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.{digits}f}"


def _plus_minus(value: float | None, stderr: float | None, digits: int = 6) -> str:
    return f"{_number(value, digits)} ± {_number(stderr, digits)}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{_number(100.0 * value, 3)} %"


def _percent_pm(value: float, stderr: float) -> str:
    return f"{_number(100.0 * value, 3)} ± {_number(100.0 * stderr, 3)} %"


def _perplexity_rows(r: ComparisonReport) -> list[tuple[str, str]]:
    return [
        ("Mean PPL(test)", _plus_minus(r.ppl_test, r.ppl_test_stderr)),
        ("Mean PPL(base)", _plus_minus(r.ppl_base, r.ppl_base_stderr)),
        ("Cor(ln PPL(test), ln PPL(base))", _percent(r.nll_correlation)),
        (
            f"Mean log(PPL(test)/PPL(base)) [{r.unit}]",
            _plus_minus(r.log_ppl_ratio, r.log_ppl_ratio_stderr),
        ),
        ("Mean PPL(test)/PPL(base)", _plus_minus(r.ppl_ratio, r.ppl_ratio_stderr)),
        ("Mean PPL(test)-PPL(base)", _plus_minus(r.ppl_difference, r.ppl_difference_stderr)),
    ]


def _ladder(
    percentiles: dict[str, float] | None,
    keys: tuple[float, ...],
    median: float | None,
    split: float,
    name: str,
    fmt: Any,
) -> list[tuple[str, str]]:
    rows = []
    for q in keys:
        if q < split and not any(label.startswith("Median") for label, _ in rows):
            rows.append((f"Median  {name}", fmt(median)))
        value = None if percentiles is None else percentiles[_key(q)]
        rows.append((f"{q:4.1f}%   {name}", fmt(value)))
    return rows


def _kl_rows(r: ComparisonReport) -> list[tuple[str, str]]:
    rows = [
        ("Mean    KLD", _plus_minus(r.kl_mean, r.kl_stderr)),
        ("Maximum KLD", _number(r.kl_max)),
    ]
    rows += _ladder(r.kl_percentiles, KL_PERCENTILES, r.kl_median, 50.0, "KLD", _number)
    rows.append(("Minimum KLD", _number(r.kl_min)))
    if r.kl_infinite:
        rows.append(("Infinite KLD", f"{r.kl_infinite} positions"))
    return rows


def _probability_rows(r: ComparisonReport) -> list[tuple[str, str]]:
    rows = [
        ("Mean    Δp", _percent_pm(r.delta_p_mean, r.delta_p_stderr)),
        ("Maximum Δp", _percent(r.delta_p_max)),
    ]
    rows += _ladder(
        r.delta_p_percentiles, DELTA_P_PERCENTILES, r.delta_p_median, 50.0, "Δp", _percent
    )
    rows += [
        ("Minimum Δp", _percent(r.delta_p_min)),
        ("RMS Δp", _percent_pm(r.delta_p_rms, r.delta_p_rms_stderr)),
        ("Same top p", _percent_pm(r.same_top, r.same_top_stderr)),
    ]
    return rows


# --- HTML ------------------------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            "the HTML report draws its histograms with matplotlib, which is not installed "
            f"(pip install matplotlib): {err}"
        ) from err
    return plt


def _png(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _histogram_pngs(r: ComparisonReport) -> list[tuple[str, str]]:
    plt = _pyplot()
    kl = r.token_kl
    finite = kl[np.isfinite(kl)]
    positive = finite[finite > 0]
    zeros = int(finite.size - positive.size)
    out = []
    figure, axes = plt.subplots(figsize=(7.0, 3.6))
    if positive.size:
        low, high = np.log10(positive.min()), np.log10(positive.max())
        bins = np.logspace(low, high if high > low else low + 1.0, 60)
        axes.hist(positive, bins=bins, color="#4477aa")
        axes.set_xscale("log")
    axes.set_xlabel(f"per-token KL(base ‖ test) [{r.unit}], log scale")
    axes.set_ylabel("positions")
    axes.set_title(
        f"{r.n_tokens} positions: {zeros} with KL = 0, {r.kl_infinite} infinite (not shown)"
    )
    for label, value in (("mean", r.kl_mean), ("median", r.kl_median)):
        if value is not None and math.isfinite(value) and value > 0:
            style = "--" if label == "mean" else ":"
            axes.axvline(value, color="#cc6677", linestyle=style, label=f"{label} {value:.3g}")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
    out.append(("Per-token KL divergence", _png(figure)))
    plt.close(figure)
    figure, axes = plt.subplots(figsize=(7.0, 3.6))
    axes.hist(100.0 * r.token_delta_p, bins=80, color="#228833")
    axes.set_yscale("log")
    axes.set_xlabel("Δp = p_test(t) − p_base(t) [%]")
    axes.set_ylabel("positions (log scale)")
    out.append(("Per-token Δp", _png(figure)))
    plt.close(figure)
    return out


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:0 0 1.5em}"
    "td{padding:.15em .8em;border-bottom:1px solid #ddd}"
    "td.v{text-align:right;font-family:monospace}"
)


def _html_page(r: ComparisonReport, figures: list[tuple[str, str]]) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>kldiv compare: base vs test</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Model comparison: D(P<sub>base</sub> ‖ P<sub>test</sub>)</h1>",
        f"<p>{html.escape(r.header())}</p>",
    ]
    for title, rows in r.sections():
        parts.append(f"<h2>{html.escape(title)}</h2><table>")
        parts += [
            f'<tr><td>{html.escape(label)}</td><td class="v">{html.escape(value)}</td></tr>'
            for label, value in rows
        ]
        parts.append("</table>")
    for title, png in figures:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(f'<img alt="{html.escape(title)}" src="data:image/png;base64,{png}">')
    if not figures:
        parts.append("<p>Per-token values were not kept (per_token=False): no histograms.</p>")
    parts.append("<p>Written by kldiv.</p></body></html>")
    return "\n".join(parts) + "\n"
