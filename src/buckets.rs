//! Histogram bucket bounds, in seconds: a leaf of constants that the
//! engine (which keeps the histograms) and the exposition both use, so
//! that neither imports the other.

pub static WAIT: [f64; 11] = [
    5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];
pub static TALK: [f64; 10] = [
    30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1800.0, 3600.0,
];
pub static HOLD: [f64; 8] = [5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0];
pub static WRAP: [f64; 8] = [10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 600.0, 1800.0];
/// Age structure of the open backlog: the upper bounds of the bands.
pub static AGE: [f64; 8] = [
    900.0, 3600.0, 14400.0, 28800.0, 86400.0, 172800.0, 345600.0, 604800.0,
];
pub static COMPLETION: [f64; 12] = [
    300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 43200.0, 86400.0, 172800.0, 345600.0,
    604800.0,
];
/// The names of the age bands: one per bound of `AGE`, and the last
/// for everything older.
pub static AGE_BANDS: [&str; 9] = [
    "0-15m", "15m-1h", "1h-4h", "4h-8h", "8h-1d", "1d-2d", "2d-4d", "4d-7d", "7d+",
];
