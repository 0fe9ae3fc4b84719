//! The squeezing toy's CSV tables.

use super::SqueezingResult;
use crate::experiments::{Cell, Table};

/// The CSV header of `squeezing.csv`.
pub const CSV_HEADER: &str = "case,class,role,p_before,p_after,log_p_before,log_p_after";

impl SqueezingResult {
    /// The rows under [`CSV_HEADER`]: every class of every case, as `ldyn squeeze --csv`
    /// writes them, with the case first.
    pub fn csv_rows(&self) -> Vec<Vec<Cell>> {
        (self.cases.iter())
            .flat_map(|c| {
                let s = &c.squeeze;
                (s.roles.iter().enumerate()).map(move |(i, role)| {
                    let (b, a) = (s.log_p_before[i], s.log_p_after[i]);
                    crate::cells![c.id.id(), i, role.name(), b.exp(), a.exp(), b, a]
                })
            })
            .collect()
    }

    /// The tables: every case's distribution before and after, the case titles, and
    /// the animation's frames.
    pub(super) fn tables(&self) -> Vec<Table> {
        let titles = self
            .cases
            .iter()
            .map(|c| crate::cells![c.id.id(), &c.title])
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
                            crate::cells![case.id.id(), k, class, lp.exp(), *lp]
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
