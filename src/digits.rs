//! The UCI 8×8 handwritten digits, embedded in the crate: the small, real stand-in
//! for MNIST in the paper's Figure 1.
//!
//! 1,797 images from the test part of the UCI "Optical Recognition of Handwritten
//! Digits" data set (E. Alpaydin, C. Kaynak, 1998; CC BY 4.0, see `data/README.md`).
//! Each line of `data/digits.csv` holds 64 pixel intensities `0..=16` (row-major) and
//! the label `0..=9`; [`Digits::embedded`] scales pixels to `[0, 1]`.

use nalgebra::DVector;
use rand::Rng;
use rand::seq::SliceRandom;

use crate::error::{Error, Result};

/// Number of pixels of one image (8 × 8).
pub const PIXELS: usize = 64;
/// Number of classes.
pub const CLASSES: usize = 10;

const EMBEDDED: &str = include_str!("../data/digits.csv");

/// Images (pixels scaled to `[0, 1]`) and their labels.
#[derive(Clone, Debug, PartialEq)]
pub struct Digits {
    /// Images, 64 pixels each in `[0, 1]`.
    pub images: Vec<DVector<f64>>,
    /// Labels `0..=9`, one per image.
    pub labels: Vec<usize>,
}

impl Digits {
    /// The embedded data set (1,797 images).
    pub fn embedded() -> Result<Self> {
        Self::parse(EMBEDDED, "data/digits.csv")
    }

    /// Parses the CSV format described in the module docs; `source` names the text in
    /// error messages, which also give the line number.
    pub fn parse(text: &str, source: &str) -> Result<Self> {
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let err = |message: String| Error::Parse {
                path: source.into(),
                line: i + 1,
                message,
            };
            let values: Vec<u32> = line
                .split(',')
                .map(|v| {
                    v.trim()
                        .parse::<u32>()
                        .map_err(|_| err(format!("'{}' is not a whole number", v.trim())))
                })
                .collect::<Result<_>>()?;
            if values.len() != PIXELS + 1 {
                return Err(err(format!(
                    "expected {} values (64 pixels and a label), got {}",
                    PIXELS + 1,
                    values.len()
                )));
            }
            if let Some(p) = values[..PIXELS].iter().find(|&&p| p > 16) {
                return Err(err(format!("pixel value {p} is outside 0..=16")));
            }
            let label = values[PIXELS] as usize;
            if label >= CLASSES {
                return Err(err(format!("label {label} is outside 0..=9")));
            }
            images.push(DVector::from_iterator(
                PIXELS,
                values[..PIXELS].iter().map(|&p| f64::from(p) / 16.0),
            ));
            labels.push(label);
        }
        if images.is_empty() {
            return Err(Error::Parse {
                path: source.into(),
                line: 0,
                message: "no images".into(),
            });
        }
        Ok(Digits { images, labels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.images.len()
    }

    /// `true` if there are no images.
    pub fn is_empty(&self) -> bool {
        self.images.is_empty()
    }

    /// A stratified split: within every class, a shuffled `test_fraction` of the images
    /// goes to the test set. Returns `(train, test)` indices, each sorted by class then
    /// shuffled order, and reproducible from `rng`.
    pub fn stratified_split(
        &self,
        test_fraction: f64,
        rng: &mut impl Rng,
    ) -> (Vec<usize>, Vec<usize>) {
        let mut train = Vec::new();
        let mut test = Vec::new();
        for class in 0..CLASSES {
            let mut members: Vec<usize> = (0..self.len())
                .filter(|&i| self.labels[i] == class)
                .collect();
            members.shuffle(rng);
            let n_test = (members.len() as f64 * test_fraction).round() as usize;
            test.extend_from_slice(&members[..n_test]);
            train.extend_from_slice(&members[n_test..]);
        }
        (train, test)
    }
}
