//! Device files for `dcc-router admin import-devices`: JSON lines (`{"device": …}` per line)
//! or CSV with a header. Every refusal names the file and the 1-based line, so an operator
//! with a million-line file can find it.

use std::path::{Path, PathBuf};

use dcc_signing::{Eui64, Eui64ParseError};

use crate::server::admin_proto::{CosCert, DevStatus, DeviceRow, Mode, Wan};

/// The columns a CSV header may name (`device` first).
const COLUMNS: [&str; 8] = [
    "device",
    "supplier",
    "export_supplier",
    "network_operator",
    "payment_mode",
    "status",
    "wan",
    "cos",
];

/// Why a device file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceFileError {
    /// The file could not be read.
    #[error("{}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{}: not UTF-8 text", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// Where it stops being UTF-8.
        source: std::string::FromUtf8Error,
    },
    /// A JSON line is not a device object.
    #[error("{}:{line}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// Why.
        source: serde_json::Error,
    },
    /// A CSV line (or the header) is refused.
    #[error("{}:{line}: {problem}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        #[source]
        problem: CsvProblem,
    },
}

impl DeviceFileError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DeviceFileError::Read { .. } => "device-file-read",
            DeviceFileError::NotUtf8 { .. } => "device-file-not-utf8",
            DeviceFileError::Json { .. } => "device-file-json",
            DeviceFileError::Csv { problem, .. } => problem.code(),
        }
    }
}

/// What is wrong with a CSV line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CsvProblem {
    /// The header does not start with `device`.
    #[error("CSV header must start with `device`")]
    Header,
    /// The header names a column twice.
    #[error("column {0:?} appears twice")]
    DuplicateColumn(String),
    /// The header names a column that is not a device field.
    #[error("unknown column {0:?}")]
    UnknownColumn(String),
    /// A line has another number of cells than the header.
    #[error("{cells} cells, header has {header}")]
    CellCount {
        /// Cells on the line.
        cells: usize,
        /// Columns in the header.
        header: usize,
    },
    /// The `device` cell is empty.
    #[error("the device cell is empty")]
    EmptyDevice,
    /// An EUI-64 cell does not parse.
    #[error("{column}: {source}")]
    Eui {
        /// The column.
        column: &'static str,
        /// Why.
        source: Eui64ParseError,
    },
    /// A payment mode, status, WAN or CoS cell is none of its values.
    #[error("{column}: {message}")]
    Value {
        /// The column.
        column: &'static str,
        /// The values allowed (clap's words: it parses these columns as on the command line).
        message: String,
    },
}

impl CsvProblem {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            CsvProblem::Header => "csv-header",
            CsvProblem::DuplicateColumn(_) => "csv-duplicate-column",
            CsvProblem::UnknownColumn(_) => "csv-unknown-column",
            CsvProblem::CellCount { .. } => "csv-cell-count",
            CsvProblem::EmptyDevice => "csv-empty-device",
            CsvProblem::Eui { .. } => "csv-eui",
            CsvProblem::Value { .. } => "csv-value",
        }
    }
}

/// Reads a device file: JSON lines (`{"device": …}` per line) or CSV with a header.
pub fn read_device_file(path: &Path) -> Result<Vec<DeviceRow>, DeviceFileError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        device: Eui64,
        #[serde(default)]
        supplier: Option<Eui64>,
        #[serde(default)]
        export_supplier: Option<Eui64>,
        #[serde(default)]
        network_operator: Option<Eui64>,
        #[serde(default)]
        payment_mode: Option<Mode>,
        #[serde(default)]
        status: Option<DevStatus>,
        #[serde(default)]
        wan: Option<Wan>,
        #[serde(default)]
        cos: Option<CosCert>,
    }
    let bytes = std::fs::read(path).map_err(|source| DeviceFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|source| DeviceFileError::NotUtf8 {
        path: path.to_path_buf(),
        source,
    })?;
    let at = |n: usize, problem: CsvProblem| DeviceFileError::Csv {
        path: path.to_path_buf(),
        line: n + 1,
        problem,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let mut rows = Vec::new();
    let first = lines.clone().next();
    let is_json = first.is_some_and(|(_, l)| l.trim_start().starts_with('{'));
    if is_json {
        for (n, l) in lines {
            let d: Line = serde_json::from_str(l).map_err(|source| DeviceFileError::Json {
                path: path.to_path_buf(),
                line: n + 1,
                source,
            })?;
            rows.push(DeviceRow {
                device: d.device,
                supplier: d.supplier,
                export_supplier: d.export_supplier,
                network_operator: d.network_operator,
                payment_mode: d.payment_mode,
                status: d.status,
                wan: d.wan,
                cos: d.cos,
            });
        }
        return Ok(rows);
    }
    let Some((hn, header)) = lines.next() else {
        return Ok(rows);
    };
    let mut cols: Vec<&'static str> = Vec::new();
    for c in header.split(',').map(|c| c.trim().to_ascii_lowercase()) {
        let Some(known) = COLUMNS.iter().find(|k| **k == c) else {
            // The header's first column decides first: a CSV file that is no device file
            // hears that, not that its first column is unknown.
            return Err(at(
                hn,
                if cols.is_empty() {
                    CsvProblem::Header
                } else {
                    CsvProblem::UnknownColumn(c)
                },
            ));
        };
        if cols.is_empty() && *known != "device" {
            return Err(at(hn, CsvProblem::Header));
        }
        if cols.contains(known) {
            return Err(at(hn, CsvProblem::DuplicateColumn(c)));
        }
        cols.push(known);
    }
    for (n, l) in lines {
        let cells: Vec<&str> = l.split(',').map(str::trim).collect();
        if cells.len() != cols.len() {
            return Err(at(
                n,
                CsvProblem::CellCount {
                    cells: cells.len(),
                    header: cols.len(),
                },
            ));
        }
        let mut row = DeviceRow::new(Eui64::default());
        for (&column, v) in cols.iter().zip(cells) {
            if v.is_empty() {
                if column == "device" {
                    return Err(at(n, CsvProblem::EmptyDevice));
                }
                continue;
            }
            let eui = || {
                v.parse::<Eui64>()
                    .map_err(|source| at(n, CsvProblem::Eui { column, source }))
            };
            let value = |message: String| at(n, CsvProblem::Value { column, message });
            match column {
                "device" => row.device = eui()?,
                "supplier" => row.supplier = Some(eui()?),
                "export_supplier" => row.export_supplier = Some(eui()?),
                "network_operator" => row.network_operator = Some(eui()?),
                "payment_mode" => {
                    row.payment_mode =
                        Some(<Mode as clap::ValueEnum>::from_str(v, true).map_err(value)?);
                }
                "wan" => {
                    row.wan = Some(<Wan as clap::ValueEnum>::from_str(v, true).map_err(value)?)
                }
                "cos" => {
                    row.cos = Some(<CosCert as clap::ValueEnum>::from_str(v, true).map_err(value)?);
                }
                _ => {
                    row.status =
                        Some(<DevStatus as clap::ValueEnum>::from_str(v, true).map_err(value)?);
                }
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn file(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("devices.csv");
        std::fs::write(&p, text).unwrap();
        (dir, p)
    }

    /// The CSV `wan` and `cos` columns (DP094, ECoS) reach the rows, and a bad value names
    /// its line and column.
    #[test]
    fn device_files_carry_the_wan_and_cos_columns() {
        let (_d, p) = file(
            "device,supplier,wan,cos\n02-DC-D0-00-00-00-00-01,02-DC-C0-00-00-00-00-01,none,ecos\n02-DC-D0-00-00-00-00-02,,poor,\n",
        );
        let rows = read_device_file(&p).unwrap();
        assert_eq!(
            (rows[0].wan, rows[0].cos, rows[1].wan, rows[1].cos),
            (Some(Wan::None), Some(CosCert::Ecos), Some(Wan::Poor), None)
        );
        let d = rows[0].to_device();
        assert_eq!(
            (d.wan, d.cos),
            (
                crate::state::WanState::None,
                crate::state::CosCertificate::Ecos
            )
        );
        let (_d, p) = file("device,wan\n02-DC-D0-00-00-00-00-01,sometimes\n");
        let e = read_device_file(&p).unwrap_err();
        assert_eq!(e.code(), "csv-value");
        let e = e.to_string();
        assert!(e.contains(":2:") && e.contains("wan"), "{e}");
    }

    #[test]
    fn device_files_parse_as_csv_or_json_lines_and_name_the_line_of_an_error() {
        let (_d, p) = file(
            "device,supplier,payment_mode\n02-DC-D0-00-00-00-00-01,02-DC-C0-00-00-00-00-01,prepayment\n02-DC-D0-00-00-00-00-02,,\n",
        );
        let rows = read_device_file(&p).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].payment_mode, Some(Mode::Prepayment));
        assert_eq!(rows[1].supplier, None);
        let (_d, p) = file("{\"device\":\"02-DC-D0-00-00-00-00-03\",\"status\":\"suspended\"}\n");
        assert_eq!(
            read_device_file(&p).unwrap()[0].status,
            Some(DevStatus::Suspended)
        );
        for (text, want, code) in [
            (
                "device,supplier\n,02-DC-C0-00-00-00-00-01\n",
                ":2: the device cell is empty",
                "csv-empty-device",
            ),
            (
                "device,supplier,supplier\n",
                ":1: column \"supplier\" appears twice",
                "csv-duplicate-column",
            ),
            (
                "supplier,device\n",
                ":1: CSV header must start with `device`",
                "csv-header",
            ),
            (
                "colour,device\n",
                ":1: CSV header must start with `device`",
                "csv-header",
            ),
            (
                "device,colour\n",
                ":1: unknown column \"colour\"",
                "csv-unknown-column",
            ),
            ("device\nnot-an-eui\n", ":2: device:", "csv-eui"),
            (
                "device,supplier\n02-DC-D0-00-00-00-00-01\n",
                ":2: 1 cells, header has 2",
                "csv-cell-count",
            ),
            (
                "{\"device\":\"02-DC-D0-00-00-00-00-03\",\"x\":1}\n",
                ":1: unknown field",
                "device-file-json",
            ),
        ] {
            let (_d, p) = file(text);
            let e = read_device_file(&p).unwrap_err();
            assert_eq!(e.code(), code, "{text:?}");
            let e = e.to_string();
            assert!(
                e.contains("devices.csv") && e.contains(want),
                "{text:?}: {e}"
            );
        }
    }

    /// The causes are kept: an EUI-64 cell's parse error, a JSON line's serde error.
    #[test]
    fn device_file_errors_keep_their_sources() {
        use std::error::Error as _;
        let (_d, p) = file("device\nnot-an-eui\n");
        let e = read_device_file(&p).unwrap_err();
        let problem = e.source().unwrap();
        assert!(problem
            .source()
            .unwrap()
            .downcast_ref::<Eui64ParseError>()
            .is_some());
        let (_d, p) = file("{\"device\":1}\n");
        let e = read_device_file(&p).unwrap_err();
        assert!(e
            .source()
            .unwrap()
            .downcast_ref::<serde_json::Error>()
            .is_some());
        let missing = p.with_file_name("nowhere.csv");
        let e = read_device_file(&missing).unwrap_err();
        assert_eq!(e.code(), "device-file-read");
        assert!(e.to_string().starts_with(&missing.display().to_string()));
    }
}
