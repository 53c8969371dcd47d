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

/// The plot area and its log axes.
struct Scale {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    xlo: f64,
    xhi: f64,
    yhi: f64,
}

impl Scale {
    fn x(&self, n: usize) -> f64 {
        self.left
            + ((n as f64).log2() - self.xlo) / (self.xhi - self.xlo).max(1.0)
                * (self.w - self.left - self.right)
    }

    fn y(&self, v: f64) -> f64 {
        self.top + (1.0 - v.max(1.0).log10() / self.yhi) * (self.h - self.top - self.bottom)
    }
}

/// The SVG of `series` (at least one point each).
pub fn svg(series: &[Series]) -> String {
    let sizes: Vec<usize> = series[0].points.iter().map(|p| p.0).collect();
    let values = series.iter().flat_map(|s| s.points.iter().map(|p| p.2));
    let s = Scale {
        w: 900.0,
        h: 440.0,
        left: 70.0,
        right: 300.0,
        top: 40.0,
        bottom: 50.0,
        xlo: (sizes[0] as f64).log2(),
        xhi: (*sizes.last().unwrap() as f64).log2(),
        yhi: values.fold(1.0_f64, f64::max).log10().ceil().max(1.0),
    };
    let mut out = frame(&s, &sizes);
    for (i, line) in series.iter().enumerate() {
        out += &plot(&s, i, line);
    }
    out + "</svg>\n"
}

/// The header, the grid and the axes' labels.
fn frame(s: &Scale, sizes: &[usize]) -> String {
    let (w, h, left) = (s.w, s.h, s.left);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{left}\" y=\"20\" font-size=\"14\">Datagrams each member receives because of one join (log scale; mean, and the most any member got)</text>\n"
    );
    for e in 0..=(s.yhi as i32) {
        let v = 10f64.powi(e);
        out += &format!(
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" font-size=\"12\">{v}</text>\n",
            w - s.right,
            s.y(v),
            s.y(v),
            left - 8.0,
            s.y(v) + 4.0
        );
    }
    for &n in sizes {
        out += &format!(
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">{n}</text>\n",
            s.x(n),
            h - s.bottom + 18.0
        );
    }
    out + &format!(
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\">nodes in the cluster (simulated)</text>\n",
        (left + w - s.right) / 2.0,
        h - 10.0
    )
}

/// One series: its line through the means, a bar up to each maximum, its legend.
fn plot(s: &Scale, i: usize, line: &Series) -> String {
    let path: Vec<String> = line
        .points
        .iter()
        .map(|&(n, mean, _)| format!("{:.1},{:.1}", s.x(n), s.y(mean)))
        .collect();
    let mut out = format!(
        "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>\n",
        path.join(" "),
        line.color
    );
    for &(n, mean, max) in &line.points {
        out += &format!(
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" stroke=\"{3}\"/>\
             <circle cx=\"{0:.1}\" cy=\"{1:.1}\" r=\"3\" fill=\"{3}\"/>\n",
            s.x(n),
            s.y(mean),
            s.y(max),
            line.color
        );
    }
    let ly = s.top + i as f64 * 22.0;
    out + &format!(
        "<rect x=\"{}\" y=\"{ly}\" width=\"12\" height=\"12\" fill=\"{}\"/>\
         <text x=\"{}\" y=\"{}\" font-size=\"12\">{}</text>\n",
        s.w - s.right + 15.0,
        line.color,
        s.w - s.right + 32.0,
        ly + 11.0,
        line.label
    )
}
