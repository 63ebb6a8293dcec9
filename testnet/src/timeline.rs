//! A timeline of a run a person can open in a browser: committed
//! transactions per second as bars, the faults injected as dashed vertical
//! markers ("kill node1") and shaded spans ("partition"), on one SVG.
//!
//! The SVG is SVG 1.1 and self-contained: no scripts, no external fonts,
//! stylesheets or images (text uses the viewer's generic `sans-serif`).
//! Hovering a marker or span shows its label and time (an SVG `<title>`).
//! Every label and the title are XML-escaped, and characters XML 1.0 does
//! not allow are replaced by spaces, so any label yields a valid file.
//!
//! Layout, 900 × 360: the title and a one-line summary on top, then up to
//! three rows for marker labels (a label goes to the first row where it
//! does not overlap the previous label there, so close markers are
//! staggered rather than drawn over each other), then the plot. Axis ticks
//! are "nice" numbers (1, 2 or 5 times a power of ten), in the manner of
//! Heckbert's "Nice numbers for graph labels" (Graphics Gems, 1990).
//!
//! The module is pure: it only builds strings.

use serde::Serialize;

/// A marked moment on the timeline (a perturbation: "kill node1", "heal", ...).
#[derive(Clone, Debug, Serialize)]
pub struct Marker {
    /// Seconds since the run started.
    pub at_s: f64,
    /// Shown next to the marker.
    pub label: String,
}

/// A shaded interval (e.g. a partition from its start to its heal, a node down).
#[derive(Clone, Debug, Serialize)]
pub struct Span {
    /// Start, seconds since the run started.
    pub from_s: f64,
    /// End, seconds since the run started.
    pub to_s: f64,
    /// Shown inside the span, at its top left.
    pub label: String,
}

/// The per-bucket rates `render_svg` draws: (bucket start s, tx/s).
///
/// Bucket `i` covers `[i * bucket_s, (i + 1) * bucket_s)`, so a commit on a
/// boundary counts in the later bucket; the last bucket ends at
/// `duration_s` inclusive (a commit at exactly `duration_s` counts in it)
/// and, when it is shorter than `bucket_s`, its rate is per second of its
/// own width. Commits before 0, after `duration_s` or not finite are
/// ignored. A `bucket_s` or `duration_s` that is not a positive finite
/// number gives no buckets.
pub fn rates(commits_s: &[f64], bucket_s: f64, duration_s: f64) -> Vec<(f64, f64)> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    if !positive(bucket_s) || !positive(duration_s) {
        return Vec::new();
    }
    // The tolerance keeps a duration that is a whole number of buckets from
    // growing a sliver of a bucket through rounding.
    let buckets = ((duration_s / bucket_s) * (1.0 - 1e-12)).ceil().max(1.0) as usize;
    let mut counts = vec![0u64; buckets];
    for &at in commits_s.iter().filter(|at| (0.0..=duration_s).contains(*at)) {
        counts[((at / bucket_s) as usize).min(buckets - 1)] += 1;
    }
    let width = |i: usize| if i + 1 == buckets { duration_s - i as f64 * bucket_s } else { bucket_s };
    counts.iter().enumerate().map(|(i, &count)| (i as f64 * bucket_s, count as f64 / width(i))).collect()
}

/// Renders committed transactions per second over time.
/// `commits_s`: the commit time of every committed transaction, in seconds since the run started (any order).
/// `bucket_s`: bar width (e.g. 1.0). `duration_s`: the x-axis end.
///
/// Bars are [`rates`]. A `duration_s` that is not a positive finite number
/// draws an empty axis to 1 s. Markers and spans are clamped to the x axis;
/// those with a time that is not finite are left out. With no commits the
/// y axis goes to 1.
pub fn render_svg(
    title: &str,
    commits_s: &[f64],
    bucket_s: f64,
    duration_s: f64,
    markers: &[Marker],
    spans: &[Span],
) -> String {
    let x_end_s = if duration_s.is_finite() && duration_s > 0.0 { duration_s } else { 1.0 };
    let bars = rates(commits_s, bucket_s, duration_s);
    let rate_max = bars.iter().map(|&(_, rate)| rate).fold(0.0, f64::max);
    let (y_max, y_step) = y_axis(rate_max);
    let plot = Plot { x_end_s, y_max };
    let counted = commits_s.iter().filter(|at| (0.0..=duration_s).contains(*at)).count();

    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <title>{title}</title>\n\
         <rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#ffffff\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{title}</text>\n\
         <text x=\"{}\" y=\"36\" text-anchor=\"middle\" fill=\"#555555\">{}</text>\n",
        WIDTH / 2.0,
        WIDTH / 2.0,
        summary(counted, rate_max, x_end_s, bucket_s),
        title = escape(title),
    );
    let span_boxes = layout_spans(&plot, spans);
    draw_span_shading(&mut svg, &span_boxes);
    draw_bars(&mut svg, &plot, &bars, bucket_s);
    draw_axes(&mut svg, &plot, y_step);
    draw_span_labels(&mut svg, &span_boxes);
    draw_markers(&mut svg, &plot, markers);
    svg.push_str("</svg>");
    svg
}

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 360.0;
const PLOT_LEFT: f64 = 62.0;
const PLOT_RIGHT: f64 = 884.0;
const PLOT_TOP: f64 = 86.0;
const PLOT_BOTTOM: f64 = 316.0;
/// Baseline of the first marker label row; rows are `LABEL_ROW_PX` apart.
const MARKER_ROW_Y: f64 = 54.0;
const MARKER_ROWS: usize = 3;
/// Span labels go in rows inside the plot's top.
const SPAN_ROW_Y: f64 = PLOT_TOP + 12.0;
const SPAN_ROWS: usize = 2;
const LABEL_ROW_PX: f64 = 12.0;
/// Estimated advance of one character of a 10 px label.
const LABEL_CHAR_PX: f64 = 6.0;
const SPAN_COLOURS: [&str; 4] = ["#e67e22", "#8e44ad", "#16a085", "#7f8c8d"];

/// Data coordinates to pixels.
struct Plot {
    x_end_s: f64,
    y_max: f64,
}

impl Plot {
    fn x(&self, at_s: f64) -> f64 {
        PLOT_LEFT + at_s.clamp(0.0, self.x_end_s) / self.x_end_s * (PLOT_RIGHT - PLOT_LEFT)
    }

    fn y(&self, rate: f64) -> f64 {
        PLOT_BOTTOM - rate.clamp(0.0, self.y_max) / self.y_max * (PLOT_BOTTOM - PLOT_TOP)
    }
}

fn summary(commits: usize, rate_max: f64, x_end_s: f64, bucket_s: f64) -> String {
    format!(
        "{commits} committed tx in {} s: mean {} tx/s, peak {} tx/s ({} s buckets)",
        number(x_end_s),
        number(commits as f64 / x_end_s),
        number(rate_max),
        number(bucket_s),
    )
}

/// The smallest of 1, 2, 5 times a power of ten that is at least `raw`
/// (1 for anything not positive and finite).
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|&step| step >= raw * (1.0 - 1e-9)).unwrap_or(raw)
}

/// The y axis for rates up to `rate_max`: (top, tick step), about five
/// ticks, the top a multiple of the step; (1, 0.2) when there is no rate.
fn y_axis(rate_max: f64) -> (f64, f64) {
    if !(rate_max.is_finite() && rate_max > 0.0) {
        return (1.0, 0.2);
    }
    let step = nice_step(rate_max / 5.0);
    ((rate_max / step * (1.0 - 1e-9)).ceil().max(1.0) * step, step)
}

/// A tick or summary number: at most two decimals, no trailing zeros.
fn number(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" { String::from("0") } else { text.to_string() }
}

/// Text safe inside an XML element or attribute.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(' '),
            c if c.is_control() => escaped.push(' '),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Label rows, 0 on top: a label goes to the first row where it starts
/// after the previous label there ends and, when it hangs from a line at
/// `line_px`, where no label in a lower row reaches that line (the line
/// runs down through them); if there is none, to the row that ends first.
struct Rows {
    ends_px: Vec<f64>,
}

impl Rows {
    fn new(count: usize) -> Rows {
        Rows { ends_px: vec![f64::NEG_INFINITY; count] }
    }

    fn place(&mut self, start_px: f64, width_px: f64, line_px: Option<f64>) -> usize {
        let clear_below = |row: usize| line_px.is_none_or(|x| self.ends_px[row + 1..].iter().all(|&end| end < x - 1.0));
        let free = (0..self.ends_px.len()).find(|&row| self.ends_px[row] + 4.0 <= start_px && clear_below(row));
        let row = free.unwrap_or_else(|| {
            let earliest = self.ends_px.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1));
            earliest.map_or(0, |(row, _)| row)
        });
        self.ends_px[row] = self.ends_px[row].max(start_px + width_px);
        row
    }
}

fn label_width_px(label: &str) -> f64 {
    label.chars().count() as f64 * LABEL_CHAR_PX
}

/// A span as drawn: pixels, colour and label row.
struct SpanBox<'a> {
    from_s: f64,
    to_s: f64,
    left: f64,
    right: f64,
    colour: &'static str,
    label_y: f64,
    label: &'a str,
}

fn layout_spans<'a>(plot: &Plot, spans: &'a [Span]) -> Vec<SpanBox<'a>> {
    let mut shown: Vec<(f64, f64, &str)> = spans
        .iter()
        .filter(|span| span.from_s.is_finite() && span.to_s.is_finite())
        .map(|span| (span.from_s.min(span.to_s), span.from_s.max(span.to_s), span.label.as_str()))
        .collect();
    shown.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut rows = Rows::new(SPAN_ROWS);
    let boxes = shown.into_iter().enumerate().map(|(i, (from_s, to_s, label))| {
        let (left, right) = (plot.x(from_s), plot.x(to_s));
        let row = rows.place(left + 3.0, label_width_px(label), None);
        let colour = SPAN_COLOURS[i % SPAN_COLOURS.len()];
        SpanBox { from_s, to_s, left, right, colour, label_y: SPAN_ROW_Y + row as f64 * LABEL_ROW_PX, label }
    });
    boxes.collect()
}

/// The shading goes under the bars, the labels over them.
fn draw_span_shading(svg: &mut String, boxes: &[SpanBox]) {
    for span in boxes {
        svg.push_str(&format!(
            "<g><title>{} from {} s to {} s</title><rect x=\"{:.1}\" y=\"{PLOT_TOP}\" width=\"{:.1}\" height=\"{}\" \
             fill=\"{}\" fill-opacity=\"0.15\"/></g>\n",
            escape(span.label),
            number(span.from_s),
            number(span.to_s),
            span.left,
            (span.right - span.left).max(1.0),
            PLOT_BOTTOM - PLOT_TOP,
            span.colour,
        ));
    }
}

fn draw_span_labels(svg: &mut String, boxes: &[SpanBox]) {
    for span in boxes {
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"10\" fill=\"{}\">{}</text>\n",
            span.left + 3.0,
            span.label_y,
            span.colour,
            escape(span.label),
        ));
    }
}

fn draw_bars(svg: &mut String, plot: &Plot, bars: &[(f64, f64)], bucket_s: f64) {
    svg.push_str("<g fill=\"#2e86c1\">\n");
    for &(start_s, rate) in bars.iter().filter(|&&(_, rate)| rate > 0.0) {
        let (left, right) = (plot.x(start_s), plot.x(start_s + bucket_s));
        let top = plot.y(rate);
        svg.push_str(&format!(
            "<rect x=\"{left:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>\n",
            (right - left).max(0.5),
            PLOT_BOTTOM - top
        ));
    }
    svg.push_str("</g>\n");
}

fn draw_axes(svg: &mut String, plot: &Plot, y_step: f64) {
    svg.push_str(&format!(
        "<g stroke=\"#333333\"><line x1=\"{PLOT_LEFT}\" y1=\"{PLOT_TOP}\" x2=\"{PLOT_LEFT}\" y2=\"{PLOT_BOTTOM}\"/>\
         <line x1=\"{PLOT_LEFT}\" y1=\"{PLOT_BOTTOM}\" x2=\"{PLOT_RIGHT}\" y2=\"{PLOT_BOTTOM}\"/></g>\n"
    ));
    let y_ticks = (plot.y_max / y_step).round() as usize;
    for tick in 0..=y_ticks {
        let rate = tick as f64 * y_step;
        let y = plot.y(rate);
        svg.push_str(&format!(
            "<line x1=\"{PLOT_LEFT}\" y1=\"{y:.1}\" x2=\"{PLOT_RIGHT}\" y2=\"{y:.1}\" stroke=\"#dddddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            PLOT_LEFT - 6.0,
            y + 4.0,
            number(rate)
        ));
    }
    let x_step = nice_step(plot.x_end_s / 10.0);
    let x_ticks = (plot.x_end_s / x_step * (1.0 + 1e-9)).floor() as usize;
    for tick in 0..=x_ticks {
        let at_s = tick as f64 * x_step;
        let x = plot.x(at_s);
        svg.push_str(&format!(
            "<line x1=\"{x:.1}\" y1=\"{PLOT_BOTTOM}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#333333\"/>\
             <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
            PLOT_BOTTOM + 5.0,
            PLOT_BOTTOM + 17.0,
            number(at_s)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time (s)</text>\n\
         <text x=\"18\" y=\"{y:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {y:.1})\">committed tx/s</text>\n",
        (PLOT_LEFT + PLOT_RIGHT) / 2.0,
        PLOT_BOTTOM + 36.0,
        y = (PLOT_TOP + PLOT_BOTTOM) / 2.0,
    ));
}

fn draw_markers(svg: &mut String, plot: &Plot, markers: &[Marker]) {
    let mut shown: Vec<&Marker> = markers.iter().filter(|marker| marker.at_s.is_finite()).collect();
    shown.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    let mut rows = Rows::new(MARKER_ROWS);
    for marker in shown {
        let x = plot.x(marker.at_s);
        let width = label_width_px(&marker.label);
        // Right of the line, unless that runs off the image.
        let start = if x + 3.0 + width > WIDTH - 4.0 { (x - 3.0 - width).max(4.0) } else { x + 3.0 };
        let y = MARKER_ROW_Y + rows.place(start, width, Some(x)) as f64 * LABEL_ROW_PX;
        svg.push_str(&format!(
            "<g><title>{label} at {} s</title>\
             <line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{PLOT_BOTTOM}\" stroke=\"#c0392b\" stroke-dasharray=\"4 3\"/>\
             <text x=\"{start:.1}\" y=\"{y:.1}\" font-size=\"10\" fill=\"#c0392b\">{label}</text></g>\n",
            number(marker.at_s),
            y - 9.0,
            label = escape(&marker.label),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marker(at_s: f64, label: &str) -> Marker {
        Marker { at_s, label: label.to_string() }
    }

    /// Checks that every tag is closed in order and every `&` starts an
    /// entity: enough of XML well-formedness to catch what a renderer gets
    /// wrong.
    fn assert_well_formed(svg: &str) {
        let mut open: Vec<&str> = Vec::new();
        let mut rest = svg;
        while let Some(lt) = rest.find('<') {
            let gt = rest[lt..].find('>').expect("an unclosed tag") + lt;
            let tag = &rest[lt + 1..gt];
            assert!(!tag.contains('<'), "a '<' inside tag {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name), "closing {name}");
            } else if !tag.ends_with('/') {
                open.push(tag.split_whitespace().next().expect("a tag name"));
            }
            rest = &rest[gt + 1..];
        }
        assert!(open.is_empty(), "left open: {open:?}");
        for (at, _) in svg.match_indices('&') {
            let entity = &svg[at..svg[at..].find(';').map_or(svg.len(), |end| at + end + 1)];
            assert!(["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity), "bare & at {at}: {entity}");
        }
    }

    /// The `y` attribute of the text element showing `label`.
    fn label_y(svg: &str, label: &str) -> f64 {
        let end = svg.find(&format!(">{label}</text>")).expect("the label is drawn");
        let start = svg[..end].rfind("<text").expect("in a text element");
        let y = svg[start..end].split("y=\"").nth(1).expect("a y attribute");
        y[..y.find('"').expect("a closing quote")].parse().expect("a number")
    }

    #[test]
    fn rates_of_no_commits_are_zero_in_every_bucket() {
        assert_eq!(rates(&[], 1.0, 3.0), vec![(0.0, 0.0), (1.0, 0.0), (2.0, 0.0)]);
    }

    #[test]
    fn rates_count_a_commit_on_a_bucket_boundary_in_the_later_bucket() {
        assert_eq!(rates(&[0.0, 1.0, 1.0, 2.5, 0.5], 1.0, 3.0), vec![(0.0, 2.0), (1.0, 2.0), (2.0, 1.0)]);
        assert_eq!(rates(&[0.5, 0.25], 0.25, 0.75), vec![(0.0, 0.0), (0.25, 4.0), (0.5, 4.0)]);
    }

    /// The axis end is inclusive; anything outside it, or not a time, is
    /// ignored (not clamped into the last bucket).
    #[test]
    fn rates_count_a_commit_at_the_end_and_ignore_those_outside() {
        let commits = [3.0, 3.000001, 7.0, -0.5, f64::NAN, f64::INFINITY];
        assert_eq!(rates(&commits, 1.0, 3.0), vec![(0.0, 0.0), (1.0, 0.0), (2.0, 1.0)]);
    }

    #[test]
    fn rates_of_a_partial_last_bucket_are_per_second_of_its_width() {
        assert_eq!(rates(&[0.1, 2.1, 2.2], 1.0, 2.5), vec![(0.0, 1.0), (1.0, 0.0), (2.0, 4.0)]);
    }

    #[test]
    fn rates_need_a_positive_bucket_and_duration() {
        assert!(rates(&[1.0], 0.0, 3.0).is_empty());
        assert!(rates(&[1.0], 1.0, 0.0).is_empty());
        assert!(rates(&[1.0], f64::NAN, 3.0).is_empty());
    }

    #[test]
    fn y_axis_tops_are_nice_numbers() {
        assert_eq!(y_axis(0.0), (1.0, 0.2));
        assert_eq!(y_axis(37.0), (40.0, 10.0));
        assert_eq!(y_axis(40.0), (40.0, 10.0));
        assert_eq!(y_axis(1234.0), (1500.0, 500.0));
        let (top, step) = y_axis(0.3);
        assert!((top - 0.3).abs() < 1e-12 && (step - 0.1).abs() < 1e-12, "{top} {step}");
    }

    #[test]
    fn numbers_drop_trailing_zeros() {
        assert_eq!(number(40.0), "40");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(1.5), "1.5");
        assert_eq!(number(-0.001), "0");
    }

    #[test]
    fn svg_is_self_contained_well_formed_and_escapes_labels() {
        let commits: Vec<f64> = (0..500).map(|i| f64::from(i) * 0.02).collect();
        let markers = [marker(2.0, "a<b&c"), marker(5.0, "heal \"all\"")];
        let spans = [Span { from_s: 2.0, to_s: 5.0, label: String::from("partition {0,1} | {2,3}") }];
        let svg = render_svg("run <1> & 'more'", &commits, 1.0, 10.0, &markers, &spans);
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        assert_well_formed(&svg);
        assert!(svg.contains(">a&lt;b&amp;c</text>"));
        assert!(svg.contains(">heal &quot;all&quot;</text>"));
        assert!(svg.contains(">partition {0,1} | {2,3}</text>"));
        assert!(svg.contains("<title>run &lt;1&gt; &amp; &apos;more&apos;</title>"));
        assert!(!svg.contains("a<b"));
        assert!(!svg.contains("<script") && !svg.contains("href") && !svg.contains("@import"));
        assert_eq!(svg.matches("http").count(), 1, "only the SVG namespace");
        assert!(svg.contains(">50</text>"), "50 tx/s is the y axis top");
    }

    #[test]
    fn empty_history_renders_with_y_max_1() {
        let svg = render_svg("nothing", &[], 1.0, 0.0, &[], &[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_well_formed(&svg);
        assert!(svg.contains(">1</text>") && svg.contains(">0.2</text>"));
        assert!(svg.contains("0 committed tx in 1 s"));
    }

    #[test]
    fn close_markers_are_staggered() {
        let markers = [marker(10.0, "kill node1"), marker(10.2, "kill node2"), marker(10.4, "restart node1")];
        let svg = render_svg("staggered", &[], 1.0, 60.0, &markers, &[]);
        let ys: Vec<f64> = markers.iter().map(|m| label_y(&svg, &m.label)).collect();
        assert!(ys[0] != ys[1] && ys[1] != ys[2] && ys[0] != ys[2], "{ys:?}");
        let far = render_svg("apart", &[], 1.0, 60.0, &[marker(5.0, "kill"), marker(40.0, "heal")], &[]);
        assert_eq!(label_y(&far, "kill"), label_y(&far, "heal"), "markers far apart share the first row");
    }

    /// A marker's line runs down through the rows below its label, so a
    /// label only goes where no lower label reaches its line.
    #[test]
    fn marker_lines_do_not_cross_lower_labels() {
        let mut rows = Rows::new(3);
        assert_eq!(rows.place(0.0, 10.0, Some(-3.0)), 0);
        assert_eq!(rows.place(5.0, 200.0, Some(2.0)), 1);
        assert_eq!(rows.place(20.0, 10.0, Some(17.0)), 2, "row 0 is free, but row 1's label spans the line");
        assert_eq!(rows.place(300.0, 10.0, Some(297.0)), 0);
    }

    #[test]
    fn odd_inputs_render_without_panicking() {
        let markers = [marker(f64::NAN, "lost"), marker(-5.0, "before"), marker(1e9, "after")];
        let spans = [Span { from_s: 50.0, to_s: 20.0, label: String::from("backwards\u{1}") }];
        let svg = render_svg("", &[f64::NAN, 3.0], -1.0, f64::INFINITY, &markers, &spans);
        assert_well_formed(&svg);
        assert!(!svg.contains(">lost<") && svg.contains(">before<") && svg.contains(">backwards <"));
    }
}
