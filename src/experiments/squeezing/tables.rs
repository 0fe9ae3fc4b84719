//! The squeezing toy's CSV tables.

use super::SqueezingResult;
use crate::experiments::{Table, csv_text};

/// The CSV header of `squeezing.csv`.
pub const CSV_HEADER: &str = "case,class,role,p_before,p_after,log_p_before,log_p_after";

impl SqueezingResult {
    /// CSV rows under [`CSV_HEADER`].
    pub fn csv_rows(&self) -> Vec<String> {
        self.cases
            .iter()
            .flat_map(|c| {
                c.squeeze
                    .csv_rows(true)
                    .map(move |row| format!("{},{row}", c.id.id()))
            })
            .collect()
    }

    /// The tables: every case's distribution before and after, the case titles, and
    /// the animation's frames.
    pub(super) fn tables(&self) -> Vec<Table> {
        let titles = self
            .cases
            .iter()
            .map(|c| format!("{},{}", c.id.id(), csv_text(&c.title)))
            .collect();
        let frames = self
            .animation
            .iter()
            .flat_map(|case| {
                case.frames.iter().enumerate().flat_map(move |(k, frame)| {
                    frame
                        .log_p_after
                        .iter()
                        .enumerate()
                        .map(move |(class, lp)| {
                            format!("{},{k},{class},{},{lp}", case.id.id(), lp.exp())
                        })
                })
            })
            .collect();
        vec![
            Table::new("squeezing", CSV_HEADER, self.csv_rows()),
            Table::new("squeezing_cases", "case,title", titles),
            Table::new("squeezing_frames", "case,frame,class,p,log_p", frames),
        ]
    }
}
