//! The simulator's chart (`--chart PATH`, docs/assets/scale.svg): what one join costs
//! each member, by cluster size, with answers multicast (nodes that predate `ANSWER`,
//! or no secret) and with answers by unicast. A standalone SVG: log2 x axis (nodes),
//! log10 y axis (datagrams), the mean and the largest member's count.

use crate::scenario;
use crate::sim::Settings;

/// One line of the chart: label, colour, and (N, mean, max) per size.
pub struct Series {
    pub label: String,
    pub color: &'static str,
    pub points: Vec<(usize, f64, f64)>,
}

/// Runs the join scenario for every size, with the current protocol and as before
/// `ANSWER`, and returns the chart.
pub fn joins(sizes: &[usize], seed: u64) -> String {
    let run = |label: &str, color, settings: Settings| Series {
        label: label.into(),
        color,
        points: sizes
            .iter()
            .map(|&n| {
                let r = scenario::join(n, seed, &settings);
                eprintln!("chart: {label}, N={n}");
                let (mean, max) = r.join_receipts.unwrap_or((0.0, 0.0));
                (n, mean, max)
            })
            .collect(),
    };
    let legacy = Settings {
        unicast_answers: false,
        ..Settings::default()
    };
    svg(&[
        run("answers multicast (before ANSWER)", "#d62728", legacy),
        run(
            "answers by unicast (ANSWER)",
            "#1f77b4",
            Settings::default(),
        ),
    ])
}

/// The SVG of `series` (at least one point each).
pub fn svg(series: &[Series]) -> String {
    let (w, h, left, right, top, bottom) = (900.0, 440.0, 70.0, 300.0, 40.0, 50.0);
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.2));
    let yhi = values.fold(1.0_f64, f64::max).log10().ceil().max(1.0);
    let ylo = 0.0;
    let sizes: Vec<usize> = series[0].points.iter().map(|p| p.0).collect();
    let (xlo, xhi) = (
        (sizes[0] as f64).log2(),
        (*sizes.last().unwrap() as f64).log2(),
    );
    let x = |n: usize| left + ((n as f64).log2() - xlo) / (xhi - xlo).max(1.0) * (w - left - right);
    let y = |v: f64| top + (1.0 - (v.max(1.0).log10() - ylo) / (yhi - ylo)) * (h - top - bottom);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"20\" font-size=\"14\">Datagrams each member receives because of one join (log scale; mean, and the most any member got)</text>\n"
    );
    for e in 0..=(yhi as i32) {
        let v = 10f64.powi(e);
        out += &format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{v}</text>\n",
            w - right,
            y(v),
            y(v),
            left - 8.0,
            y(v) + 4.0
        );
    }
    for &n in &sizes {
        out += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{n}</text>\n",
            x(n),
            h - bottom + 18.0
        );
    }
    out += &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">nodes in the cluster (simulated)</text>\n",
        (left + w - right) / 2.0,
        h - 10.0
    );
    for (i, s) in series.iter().enumerate() {
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(n, mean, _)| format!("{:.1},{:.1}", x(n), y(mean)))
            .collect();
        out += &format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n",
            path.join(" "),
            s.color
        );
        for &(n, mean, max) in &s.points {
            out += &format!(
                "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"{3}\"/>\
                 <circle cx=\"{0:.1}\" cy=\"{1:.1}\" r=\"3\" fill=\"{3}\"/>\n",
                x(n),
                y(mean),
                y(max),
                s.color
            );
        }
        let ly = top + i as f64 * 22.0;
        out += &format!(
            "<rect x=\"{}\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>\n",
            w - right + 15.0,
            s.color,
            w - right + 32.0,
            ly + 11.0,
            s.label
        );
    }
    out + "</svg>\n"
}
