//! The tables experiments return: typed columns (real, integer, text), which the CSV
//! writer and a binding both read. An experiment builds a table row by row, each row a
//! list of [`Cell`]s ([`cells!`](crate::cells)); the CSV text writes a real number as
//! Rust's `{}` writes it (the shortest text that reads back to the same double), an
//! integer in decimal, a missing value as nothing, and text as it is, quoted if it holds a
//! comma, a quote or a line break (RFC 4180).

/// One CSV file of an experiment: its file stem and its typed columns.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// The file stem: the table is written as `{name}.csv`.
    pub name: String,
    /// The columns, in order.
    pub columns: Vec<Column>,
}

/// One column of a [`Table`]: its name and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    /// Its name in the CSV header.
    pub name: String,
    /// Its values, one per row.
    pub values: Values,
}

/// A column's values, of one type; a column of numbers holds `None` where a row has none.
#[derive(Clone, Debug, PartialEq)]
pub enum Values {
    /// Real numbers.
    Real(Vec<Option<f64>>),
    /// Integers.
    Int(Vec<Option<i64>>),
    /// Text.
    Text(Vec<String>),
}

/// One cell of a row as an experiment builds it: a real number, an integer, text, or
/// nothing.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// A real number.
    Real(f64),
    /// An integer.
    Int(i64),
    /// Text.
    Text(String),
    /// No value.
    Missing,
}

impl Cell {
    /// The cell as its CSV field.
    fn csv(&self) -> String {
        match self {
            Cell::Real(v) => v.to_string(),
            Cell::Int(v) => v.to_string(),
            Cell::Text(t) => csv_text(t),
            Cell::Missing => String::new(),
        }
    }
}

impl From<f64> for Cell {
    fn from(v: f64) -> Self {
        Cell::Real(v)
    }
}

impl From<Option<f64>> for Cell {
    fn from(v: Option<f64>) -> Self {
        v.map_or(Cell::Missing, Cell::Real)
    }
}

impl From<usize> for Cell {
    fn from(v: usize) -> Self {
        Cell::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<u64> for Cell {
    fn from(v: u64) -> Self {
        Cell::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Self {
        Cell::Text(v.to_string())
    }
}

impl From<String> for Cell {
    fn from(v: String) -> Self {
        Cell::Text(v)
    }
}

impl From<&String> for Cell {
    fn from(v: &String) -> Self {
        Cell::Text(v.clone())
    }
}

impl From<bool> for Cell {
    fn from(v: bool) -> Self {
        Cell::Text(v.to_string())
    }
}

/// A row of a [`Table`]: `cells![label, seed, value]`, each through `Cell::from`.
#[macro_export]
macro_rules! cells {
    ($($cell:expr),* $(,)?) => {
        vec![$($crate::experiments::Cell::from($cell)),*]
    };
}

impl Column {
    /// The column named `name` of `cells`: real if its values are numbers (or missing)
    /// and one at least is real, integer if they are integers (or missing), text
    /// otherwise (each cell as its CSV field reads).
    fn of(name: &str, cells: Vec<Cell>) -> Self {
        let any = |f: fn(&Cell) -> bool| cells.iter().any(f);
        let values = match (
            any(|c| matches!(c, Cell::Text(_))),
            any(|c| matches!(c, Cell::Real(_))),
        ) {
            (true, _) => Values::Text(
                (cells.into_iter())
                    .map(|c| match c {
                        Cell::Text(t) => t,
                        other => other.csv(),
                    })
                    .collect(),
            ),
            (false, true) => Values::Real(
                (cells.into_iter())
                    .map(|c| match c {
                        Cell::Real(v) => Some(v),
                        Cell::Int(v) => Some(v as f64),
                        _ => None,
                    })
                    .collect(),
            ),
            (false, false) => Values::Int(
                (cells.into_iter())
                    .map(|c| match c {
                        Cell::Int(v) => Some(v),
                        _ => None,
                    })
                    .collect(),
            ),
        };
        Column {
            name: name.to_string(),
            values,
        }
    }

    /// Row `i` as its CSV field.
    fn csv(&self, i: usize) -> String {
        match &self.values {
            Values::Real(v) => Cell::from(v[i]).csv(),
            Values::Int(v) => v[i].map_or(Cell::Missing, Cell::Int).csv(),
            Values::Text(v) => csv_text(&v[i]),
        }
    }

    /// How many rows it has.
    pub fn len(&self) -> usize {
        match &self.values {
            Values::Real(v) => v.len(),
            Values::Int(v) => v.len(),
            Values::Text(v) => v.len(),
        }
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Table {
    /// A table named `name` with the comma-separated column names `header` and `rows`,
    /// each a row of cells ([`cells!`](crate::cells)); a row shorter than the header is
    /// missing its last values.
    pub fn new(name: impl Into<String>, header: impl AsRef<str>, rows: Vec<Vec<Cell>>) -> Self {
        let names: Vec<&str> = header.as_ref().split(',').collect();
        let mut columns: Vec<Vec<Cell>> = vec![Vec::with_capacity(rows.len()); names.len()];
        for row in rows {
            let mut row = row.into_iter();
            for column in &mut columns {
                column.push(row.next().unwrap_or(Cell::Missing));
            }
        }
        Table {
            name: name.into(),
            columns: (names.into_iter().zip(columns))
                .map(|(name, cells)| Column::of(name, cells))
                .collect(),
        }
    }

    /// The CSV header: the column names, comma-separated.
    pub fn header(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name.as_str()).collect();
        names.join(",")
    }

    /// The CSV rows, one line each.
    pub fn rows(&self) -> Vec<String> {
        (0..self.len())
            .map(|i| {
                let fields: Vec<String> = self.columns.iter().map(|c| c.csv(i)).collect();
                fields.join(",")
            })
            .collect()
    }

    /// How many rows it has.
    pub fn len(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// Quotes a free-text CSV field (RFC 4180) if it holds a comma, a quote or a newline.
pub fn csv_text(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}
