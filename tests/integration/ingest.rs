//! Ingestion of every supported format, dialect and encoding, and the errors
//! a model can act on.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use dfmcp_ingest::{Format, IngestError, Inspection, Limits, LoadOptions, LoadResult, Source};
use polars::prelude::*;

fn load(path: &Path, opts: &LoadOptions, limits: &Limits) -> dfmcp_ingest::Result<LoadResult> {
    dfmcp_ingest::load(&Source::path(path), opts, limits)
}

fn inspect(path: &Path, opts: &LoadOptions, limits: &Limits) -> dfmcp_ingest::Result<Inspection> {
    dfmcp_ingest::inspect(&Source::path(path), opts, limits)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn load_one(path: &Path, opts: &LoadOptions) -> (DataFrame, Vec<String>) {
    let result =
        load(path, opts, &Limits::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(result.tables.len(), 1, "{:?}", result.problems);
    let t = result.tables.into_iter().next().unwrap();
    (t.df, t.notes)
}

fn names(df: &DataFrame) -> Vec<String> {
    df.get_column_names()
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn cell(df: &DataFrame, col: &str, row: usize) -> AnyValue<'static> {
    df.column(col).unwrap().get(row).unwrap().into_static()
}

const PEOPLE: &str =
    "name,city,score\nJosé,München,1.5\nRenée,Köln,2\n\"Smith, Jr.\",\"New\nYork\",3.25\n";

#[test]
fn every_delimiter_is_sniffed() {
    let dir = tempfile::tempdir().unwrap();
    for (delim, name) in [
        (',', "comma.csv"),
        (';', "semi.csv"),
        ('\t', "tab.tsv"),
        ('|', "pipe.txt"),
    ] {
        let text = PEOPLE.replace(',', &delim.to_string());
        // Keep the quoted comma inside "Smith, Jr." a comma.
        let text = text.replace(&format!("\"Smith{delim} Jr.\""), "\"Smith, Jr.\"");
        let (df, _) = load_one(
            &write(dir.path(), name, text.as_bytes()),
            &LoadOptions::default(),
        );
        assert_eq!(names(&df), ["name", "city", "score"], "{name}");
        assert_eq!(df.height(), 3, "{name}");
        assert_eq!(
            cell(&df, "name", 2),
            AnyValue::StringOwned("Smith, Jr.".into()),
            "{name}"
        );
        assert_eq!(
            cell(&df, "city", 2),
            AnyValue::StringOwned("New\nYork".into()),
            "{name}"
        );
        assert_eq!(
            df.column("score").unwrap().dtype(),
            &DataType::Float64,
            "{name}"
        );
    }
}

#[test]
fn every_encoding_is_detected_and_transcoded() {
    let dir = tempfile::tempdir().unwrap();
    let text = PEOPLE;
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let utf16be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    let utf16le_no_bom: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let (cp1252, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable);
    let bom: Vec<u8> = b"\xEF\xBB\xBF"
        .iter()
        .copied()
        .chain(text.bytes())
        .collect();
    for (name, bytes, label) in [
        ("utf8.csv", text.as_bytes().to_vec(), "UTF-8"),
        ("bom.csv", bom, "UTF-8 (with BOM)"),
        ("le.csv", utf16le, "UTF-16LE"),
        ("be.csv", utf16be, "UTF-16BE"),
        ("le-nobom.csv", utf16le_no_bom, "UTF-16LE"),
        ("latin.csv", cp1252.into_owned(), "windows-1252"),
    ] {
        let path = write(dir.path(), name, &bytes);
        let result = load(&path, &LoadOptions::default(), &Limits::default()).unwrap();
        let df = &result.tables[0].df;
        assert_eq!(
            names(df),
            ["name", "city", "score"],
            "{name}: the BOM must not stick to the first name"
        );
        assert_eq!(
            cell(df, "name", 0),
            AnyValue::StringOwned("José".into()),
            "{name}"
        );
        assert_eq!(
            cell(df, "city", 1),
            AnyValue::StringOwned("Köln".into()),
            "{name}"
        );
        assert_eq!(result.text.as_ref().unwrap().encoding, label, "{name}");
        let info = inspect(&path, &LoadOptions::default(), &Limits::default()).unwrap();
        assert_eq!(info.text.unwrap().encoding, label, "{name}");
    }
    // An explicit encoding wins over detection.
    let (latin, _, _) = encoding_rs::WINDOWS_1252.encode(text);
    let path = write(dir.path(), "forced.csv", &latin);
    let opts = LoadOptions {
        encoding: Some("latin-1".into()),
        ..LoadOptions::default()
    };
    let (df, _) = load_one(&path, &opts);
    assert_eq!(
        cell(&df, "city", 0),
        AnyValue::StringOwned("München".into())
    );
}

#[test]
fn non_utf8_bytes_far_into_a_file_are_transcoded() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = b"id,word\n".to_vec();
    for i in 0..10_000 {
        bytes.extend_from_slice(format!("{i},plain\n").as_bytes());
    }
    bytes.extend_from_slice(b"10000,caf\xe9\n");
    let (df, notes) = load_one(
        &write(dir.path(), "late.csv", &bytes),
        &LoadOptions::default(),
    );
    assert_eq!(df.height(), 10_001);
    assert_eq!(
        cell(&df, "word", 10_000),
        AnyValue::StringOwned("café".into())
    );
    assert!(notes.iter().any(|n| n.contains("transcoded")), "{notes:?}");
}

#[test]
fn headers_nulls_ragged_rows_and_late_types() {
    let dir = tempfile::tempdir().unwrap();
    let (df, _) = load_one(
        &write(dir.path(), "nohead.csv", b"1,2.5,x\n3,4.5,y\n"),
        &LoadOptions::default(),
    );
    assert_eq!(names(&df), ["column_1", "column_2", "column_3"]);
    assert_eq!(df.height(), 2);

    let forced = LoadOptions {
        has_header: Some(true),
        ..LoadOptions::default()
    };
    let (df, _) = load_one(&write(dir.path(), "forced.csv", b"1,2\n3,4\n"), &forced);
    assert_eq!(df.height(), 1);

    let (df, _) = load_one(
        &write(dir.path(), "nulls.csv", b"a,b,c\n1,NA,x\n,2,N/A\n3,NULL,\n"),
        &LoadOptions::default(),
    );
    assert_eq!(
        df.columns()
            .iter()
            .map(|c| c.null_count())
            .collect::<Vec<_>>(),
        [1, 2, 2]
    );
    assert_eq!(df.column("b").unwrap().dtype(), &DataType::Int64);

    let (df, notes) = load_one(
        &write(
            dir.path(),
            "ragged.csv",
            b"a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n",
        ),
        &LoadOptions::default(),
    );
    assert_eq!(df.shape(), (4, 3));
    assert_eq!(cell(&df, "c", 1), AnyValue::Null);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("different number of fields")),
        "{notes:?}"
    );

    let mut late = String::from("id,v\n");
    for i in 0..20_000 {
        late.push_str(&format!("{i},{i}\n"));
    }
    late.push_str("20000,1.5\n");
    let (df, _) = load_one(
        &write(dir.path(), "late.csv", late.as_bytes()),
        &LoadOptions::default(),
    );
    assert_eq!(df.column("v").unwrap().dtype(), &DataType::Float64);

    let (df, _) = load_one(
        &write(dir.path(), "dupes.csv", b"a,a, ,b\n1,2,3,4\n"),
        &LoadOptions::default(),
    );
    assert_eq!(names(&df), ["a", "a_2", "column_3", "b"]);

    let (df, _) = load_one(
        &write(
            dir.path(),
            "dates.csv",
            b"d,t\n2024-01-31,2024-01-31 10:00:00\n2024-02-29,2024-02-29 23:59:59\n",
        ),
        &LoadOptions::default(),
    );
    assert_eq!(df.column("d").unwrap().dtype(), &DataType::Date);
    assert!(matches!(
        df.column("t").unwrap().dtype(),
        DataType::Datetime(_, _)
    ));
}

#[test]
fn csv_temporal_columns_parse_exactly_or_stay_text() {
    let dir = tempfile::tempdir().unwrap();
    // Every value past the sniffed head must parse too: the late "soon"
    // keeps `late` as text rather than becoming a silent null.
    let mut csv = String::from("dmy,offset,zulu,clock,mixed,late,with_null\n");
    for i in 0..3000 {
        let late = if i == 2999 {
            "soon".to_string()
        } else {
            format!("2024-03-{:02}", i % 28 + 1)
        };
        let mixed = if i % 2 == 0 {
            "2024-03-05"
        } else {
            "2024/03/06"
        };
        let with_null = if i % 3 == 0 {
            ""
        } else {
            "2024-03-07T08:09:10.5"
        };
        csv.push_str(&format!(
            "31/12/2023,2024-01-02T03:04:05+02:00,2024-01-02T03:04:05Z,12:30:15,{mixed},{late},{with_null}\n"
        ));
    }
    let (df, notes) = load_one(
        &write(dir.path(), "temporal.csv", csv.as_bytes()),
        &LoadOptions::default(),
    );
    let dtype = |name: &str| df.column(name).unwrap().dtype().clone();
    assert_eq!(dtype("dmy"), DataType::Date);
    let dmy = df.column("dmy").unwrap().date().unwrap().physical().get(0);
    assert_eq!(dmy, Some(19722), "31/12/2023 is day 19722 since the epoch");
    assert_eq!(
        dtype("offset"),
        DataType::Datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
    );
    let offset = df
        .column("offset")
        .unwrap()
        .datetime()
        .unwrap()
        .physical()
        .get(0);
    assert_eq!(
        offset,
        Some(1_704_157_445_000_000),
        "03:04:05+02:00 is 01:04:05 UTC"
    );
    assert!(
        matches!(dtype("zulu"), DataType::Datetime(_, Some(_))),
        "{:?}",
        dtype("zulu")
    );
    assert_eq!(dtype("clock"), DataType::Time);
    assert_eq!(
        dtype("mixed"),
        DataType::Date,
        "two YMD separators still parse"
    );
    assert_eq!(df.column("mixed").unwrap().null_count(), 0);
    assert_eq!(dtype("late"), DataType::String);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("late") && n.contains("1 value(s)")),
        "{notes:?}"
    );
    assert!(matches!(dtype("with_null"), DataType::Datetime(_, None)));
    assert_eq!(df.column("with_null").unwrap().null_count(), 1000);
}

#[test]
fn decimal_commas_are_reported_and_parsed_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "eu.csv",
        b"item;price;qty\nA;1.234,50;2\nB;3,75;1\n",
    );
    let (df, notes) = load_one(&path, &LoadOptions::default());
    assert_eq!(df.column("price").unwrap().dtype(), &DataType::String);
    assert!(
        notes.iter().any(|n| n.contains("decimal_comma")),
        "{notes:?}"
    );
    let info = inspect(&path, &LoadOptions::default(), &Limits::default()).unwrap();
    assert_eq!(info.text.unwrap().decimal_comma_columns, ["price"]);
    let opts = LoadOptions {
        decimal_comma: true,
        ..LoadOptions::default()
    };
    let (df, _) = load_one(&path, &opts);
    assert_eq!(cell(&df, "price", 0), AnyValue::Float64(1234.5));
}

#[test]
fn options_skip_rows_max_rows_nulls_and_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "report.csv",
        b"Sales report\nexported today\na;b\n1;-\n2;5\n3;6\n",
    );
    let opts = LoadOptions {
        skip_rows: 2,
        max_rows: Some(2),
        null_values: Some(vec!["-".into()]),
        delimiter: Some(';'),
        ..LoadOptions::default()
    };
    let (df, notes) = load_one(&path, &opts);
    assert_eq!(names(&df), ["a", "b"]);
    assert_eq!(df.height(), 2);
    assert_eq!(cell(&df, "b", 0), AnyValue::Null);
    assert!(notes.iter().any(|n| n.contains("max_rows")), "{notes:?}");
}

/// The reader is given only the null markers a file holds: ones that first
/// occur far past the schema sample and past the first slice of the scan
/// must still make nulls, in numeric and text columns alike.
#[test]
fn null_markers_late_in_a_large_file_are_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("id,score,label\n");
    let rows = 600_000;
    for i in 0..rows {
        let (score, label) = match i {
            _ if i == rows - 2 => ("NaN".to_string(), "None".to_string()),
            _ if i == rows - 1 => ("#N/A".to_string(), "<NA>".to_string()),
            _ => (format!("{}.5", i % 97), format!("north{}", i % 7)),
        };
        text.push_str(&format!("{i},{score},{label}\n"));
    }
    assert!(text.len() > 8 << 20, "the markers lie past the first slice");
    let path = write(dir.path(), "late.csv", text.as_bytes());
    let (df, _) = load_one(&path, &LoadOptions::default());
    assert_eq!(df.column("score").unwrap().dtype(), &DataType::Float64);
    assert_eq!(df.column("score").unwrap().null_count(), 2);
    assert_eq!(df.column("label").unwrap().null_count(), 2);
    assert_eq!(cell(&df, "score", rows - 2), AnyValue::Null);
    assert_eq!(cell(&df, "label", rows - 1), AnyValue::Null);
}

#[test]
fn errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits::default();
    let opts = LoadOptions::default();

    let err = load(&write(dir.path(), "empty.csv", b""), &opts, &limits).unwrap_err();
    assert!(matches!(err, IngestError::Empty { .. }), "{err}");

    let mut binary = vec![0u8; 4096];
    for (i, b) in binary.iter_mut().enumerate() {
        *b = (i * 7 % 256) as u8;
    }
    let err = load(&write(dir.path(), "data.csv", &binary), &opts, &limits).unwrap_err();
    assert!(matches!(err, IngestError::Binary { .. }), "{err}");

    let err = load(&dir.path().join("nope.csv"), &opts, &limits).unwrap_err();
    assert!(matches!(err, IngestError::NotFound { .. }), "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );

    let err = load(dir.path(), &opts, &limits).unwrap_err();
    assert!(matches!(err, IngestError::IsDirectory { .. }), "{err}");

    let err = load(
        &write(dir.path(), "x.pdf", b"%PDF-1.7\n..."),
        &opts,
        &limits,
    )
    .unwrap_err();
    assert!(err.to_string().contains("PDF"), "{err}");

    let big = write(dir.path(), "big.csv", &b"a\n1\n".repeat(1000));
    let small = Limits {
        max_file_bytes: 100,
        ..Limits::default()
    };
    let err = load(&big, &opts, &small).unwrap_err();
    assert!(matches!(err, IngestError::FileTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("limit"), "{err}");
    let few = Limits {
        max_rows: 10,
        ..Limits::default()
    };
    let err = load(&big, &opts, &few).unwrap_err();
    assert!(matches!(err, IngestError::TooManyRows { .. }), "{err}");
    assert!(err.to_string().contains("limit"), "{err}");

    let err = load(&fixtures().join("encrypted.xlsx"), &opts, &limits).unwrap_err();
    assert!(matches!(err, IngestError::Encrypted { .. }), "{err}");

    let err = load(
        &write(dir.path(), "fake.xlsx", b"PK\x03\x04garbage"),
        &opts,
        &limits,
    )
    .unwrap_err();
    assert!(matches!(err, IngestError::Corrupt { .. }), "{err}");

    let bad = LoadOptions {
        encoding: Some("klingon".into()),
        ..LoadOptions::default()
    };
    let err = load(&write(dir.path(), "k.csv", b"a\n1\n"), &bad, &limits).unwrap_err();
    assert!(matches!(err, IngestError::UnknownEncoding { .. }), "{err}");
}

/// An xlsx with a good sheet, an empty one and a broken one.
fn three_sheet_workbook(dir: &Path) -> PathBuf {
    let mut book = rust_xlsxwriter::Workbook::new();
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    let stamp = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd hh:mm");
    let good = book.add_worksheet().set_name("Sales 2024").unwrap();
    good.write_string(0, 0, "Quarterly sales").unwrap();
    good.write_row(2, 0, ["region", "amount", "day", "when", "flag", "mixed"])
        .unwrap();
    type Row<'a> = (&'a str, f64, (u16, u8, u8), bool);
    let rows: [Row; 3] = [
        ("EU", 10.0, (2024, 1, 31), true),
        ("US", 12.5, (2024, 2, 29), false),
        ("APAC", 7.0, (2024, 12, 31), true),
    ];
    for (i, (region, amount, (y, m, d), flag)) in rows.iter().enumerate() {
        let r = 3 + i as u32;
        good.write_string(r, 0, *region).unwrap();
        good.write_number(r, 1, *amount).unwrap();
        let day = rust_xlsxwriter::ExcelDateTime::from_ymd(*y, *m, *d).unwrap();
        good.write_datetime_with_format(r, 2, &day, &date).unwrap();
        let when = rust_xlsxwriter::ExcelDateTime::from_ymd(*y, *m, *d)
            .unwrap()
            .and_hms(9, 30, 0)
            .unwrap();
        good.write_datetime_with_format(r, 3, &when, &stamp)
            .unwrap();
        good.write_boolean(r, 4, *flag).unwrap();
    }
    good.write_number(3, 5, 1.0).unwrap();
    good.write_string(4, 5, "two").unwrap();
    book.add_worksheet().set_name("Empty").unwrap();
    let broken = book.add_worksheet().set_name("Broken").unwrap();
    broken.write_row(0, 0, ["a", "b"]).unwrap();
    broken.write_row(1, 0, [1.0, 2.0]).unwrap();
    let bytes = book.save_to_buffer().unwrap();

    // Corrupt the third sheet's XML inside the zip.
    let mut archive = ::zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let out_path = dir.join("book.xlsx");
    let mut writer = ::zip::ZipWriter::new(std::fs::File::create(&out_path).unwrap());
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().to_string();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        if name == "xl/worksheets/sheet3.xml" {
            content = b"<worksheet><sheetData><row r=\"1\"><c r=\"A1\" t=\"s\"><v>99".to_vec();
        }
        writer
            .start_file(name, ::zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(&content).unwrap();
    }
    writer.finish().unwrap();
    out_path
}

#[test]
fn xlsx_sheets_load_apart_with_types_and_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = three_sheet_workbook(dir.path());
    let result = load(&path, &LoadOptions::default(), &Limits::default()).unwrap();
    assert_eq!(result.format, Format::Xlsx);
    assert_eq!(result.tables.len(), 1, "{:?}", result.problems);
    let t = &result.tables[0];
    assert_eq!(t.name, "Sales_2024");
    assert_eq!(
        names(&t.df),
        ["region", "amount", "day", "when", "flag", "mixed"]
    );
    assert_eq!(t.df.column("amount").unwrap().dtype(), &DataType::Float64);
    assert_eq!(t.df.column("day").unwrap().dtype(), &DataType::Date);
    assert_eq!(cell(&t.df, "day", 1).to_string(), "2024-02-29");
    assert!(matches!(
        t.df.column("when").unwrap().dtype(),
        DataType::Datetime(_, None)
    ));
    assert_eq!(t.df.column("flag").unwrap().dtype(), &DataType::Boolean);
    assert_eq!(t.df.column("mixed").unwrap().dtype(), &DataType::String);
    assert!(
        t.notes.iter().any(|n| n.contains("title row")),
        "{:?}",
        t.notes
    );
    assert!(
        t.notes.iter().any(|n| n.contains("'mixed' mixes text")),
        "{:?}",
        t.notes
    );
    let sources: Vec<&str> = result.problems.iter().map(|p| p.source.as_str()).collect();
    assert_eq!(sources, ["sheet 'Empty'", "sheet 'Broken'"]);
    assert!(result.problems[0].message.contains("empty"));

    let info = inspect(&path, &LoadOptions::default(), &Limits::default()).unwrap();
    assert_eq!(info.sheets.len(), 3);
    assert_eq!(info.sheets[0].rows, 3);
    assert_eq!(info.sheets[0].header_row, Some(3));
    assert!(info.sheets[2].problem.is_some());

    let only = LoadOptions {
        sheets: Some(vec!["sales 2024".into()]),
        table_name: Some("q".into()),
        ..LoadOptions::default()
    };
    let result = load(&path, &only, &Limits::default()).unwrap();
    assert_eq!(result.tables[0].name, "q");
    let missing = LoadOptions {
        sheets: Some(vec!["Nope".into()]),
        ..LoadOptions::default()
    };
    let err = load(&path, &missing, &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("Sales 2024"), "{err}");

    // The extension lies; the content decides.
    let renamed = dir.path().join("actually-xlsx.csv");
    std::fs::copy(&path, &renamed).unwrap();
    let result = load(&renamed, &LoadOptions::default(), &Limits::default()).unwrap();
    assert_eq!(result.format, Format::Xlsx);
    assert!(
        result.notes.iter().any(|n| n.contains("extension")),
        "{:?}",
        result.notes
    );
}

#[test]
fn legacy_and_other_workbook_formats() {
    for (file, format) in [
        ("multi.xls", Format::Xls),
        ("multi.ods", Format::Ods),
        ("multi.xlsb", Format::Xlsb),
    ] {
        let result = load(
            &fixtures().join(file),
            &LoadOptions::default(),
            &Limits::default(),
        )
        .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(result.format, format, "{file}");
        let tables: Vec<&str> = result.tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(tables, ["Orders", "Notes"], "{file}");
        assert_eq!(result.problems.len(), 1, "{file}: {:?}", result.problems);
        assert_eq!(result.problems[0].source, "sheet 'Empty'");
        let orders = &result.tables[0].df;
        assert_eq!(names(orders), ["id", "amount", "ordered"], "{file}");
        assert_eq!(
            orders.column("id").unwrap().dtype(),
            &DataType::Int64,
            "{file}"
        );
        assert_eq!(orders.column("amount").unwrap().null_count(), 1, "{file}");
        assert_eq!(
            orders.column("ordered").unwrap().dtype(),
            &DataType::Date,
            "{file}"
        );
        assert_eq!(
            cell(orders, "ordered", 1).to_string(),
            "2024-02-29",
            "{file}"
        );
        let notes = &result.tables[1];
        assert_eq!(names(&notes.df), ["customer", "note"], "{file}");
        assert_eq!(notes.df.height(), 2, "{file}");
    }
}

#[test]
fn columnar_and_json_formats() {
    let dir = tempfile::tempdir().unwrap();
    let mut df = df!(
        "id" => [1i64, 2, 3],
        "name" => [Some("a"), None, Some("c")],
        "when" => [1_700_000_000_000i64, 1_700_000_100_000, 1_700_000_200_000],
    )
    .unwrap();
    df.with_column(
        df.column("when")
            .unwrap()
            .cast(&DataType::Datetime(
                TimeUnit::Milliseconds,
                Some(TimeZone::UTC),
            ))
            .unwrap(),
    )
    .unwrap();
    let pq = dir.path().join("t.parquet");
    ParquetWriter::new(std::fs::File::create(&pq).unwrap())
        .finish(&mut df.clone())
        .unwrap();
    let ipc = dir.path().join("t.arrow");
    IpcWriter::new(std::fs::File::create(&ipc).unwrap())
        .finish(&mut df.clone())
        .unwrap();
    for path in [&pq, &ipc] {
        let (loaded, _) = load_one(path, &LoadOptions::default());
        assert!(loaded.equals_missing(&df), "{}", path.display());
    }
    let info = inspect(&pq, &LoadOptions::default(), &Limits::default()).unwrap();
    assert_eq!(info.rows, Some(3));
    assert_eq!(info.schema.len(), 3);

    let json = write(
        dir.path(),
        "t.json",
        br#"[{"id": 1, "name": "a", "tags": [1, 2]}, {"id": 2, "name": null}]"#,
    );
    let (loaded, _) = load_one(&json, &LoadOptions::default());
    assert_eq!(loaded.height(), 2);
    assert_eq!(cell(&loaded, "name", 1), AnyValue::Null);
    let ndjson = write(
        dir.path(),
        "t.ndjson",
        b"{\"id\": 1, \"v\": 0.5}\n{\"id\": 2, \"v\": null}\n",
    );
    let (loaded, _) = load_one(&ndjson, &LoadOptions::default());
    assert_eq!(loaded.shape(), (2, 2));
    let jsonl_named_json = write(
        dir.path(),
        "lines.json",
        b"{\"a\": 1}\n{\"a\": 2}\n{\"a\": 3}\n",
    );
    let (loaded, _) = load_one(&jsonl_named_json, &LoadOptions::default());
    assert_eq!(loaded.height(), 3);
}

#[test]
fn table_names_come_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "My Data (v2).csv", b"a\n1\n");
    let result = load(&path, &LoadOptions::default(), &Limits::default()).unwrap();
    assert_eq!(result.tables[0].name, "My_Data_v2");
    let path = write(dir.path(), "2024 sales.csv", b"a\n1\n");
    let result = load(&path, &LoadOptions::default(), &Limits::default()).unwrap();
    assert_eq!(result.tables[0].name, "t_2024_sales");
}

/// Defect 5: a JSON document nested 10,000 levels deep overflowed the stack,
/// and one nested 1,000 levels took memory to the cap. Both are refused
/// before polars parses them.
#[test]
fn deeply_nested_json_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    for depth in [1_000, 10_000] {
        let text = format!("[{{\"a\": {}1{}}}]", "[".repeat(depth), "]".repeat(depth));
        let path = write(dir.path(), &format!("deep{depth}.json"), text.as_bytes());
        let err = load(&path, &LoadOptions::default(), &Limits::default()).unwrap_err();
        assert!(matches!(err, IngestError::TooComplex { .. }), "{err}");
        assert!(err.to_string().contains("64"), "{err}");
    }
    // Many distinct keys in many objects would make billions of cells.
    let objects: Vec<String> = (0..3000)
        .map(|i| format!("{{\"k{i}\": {i}, \"n\": [{{\"x{i}\": 1}}]}}"))
        .collect();
    let path = write(
        dir.path(),
        "wide.json",
        format!("[{}]", objects.join(",")).as_bytes(),
    );
    let few = Limits {
        max_cells: 1_000_000,
        ..Limits::default()
    };
    let err = load(&path, &LoadOptions::default(), &few).unwrap_err();
    assert!(matches!(err, IngestError::TooComplex { .. }), "{err}");
    // Ordinary nesting still loads.
    let path = write(
        dir.path(),
        "ok.json",
        br#"[{"a": 1, "b": {"c": [1, 2]}}, {"a": 2, "b": {"c": []}}]"#,
    );
    let result = load(&path, &LoadOptions::default(), &Limits::default()).unwrap();
    assert_eq!(result.tables[0].df.height(), 2);
}

/// Defect 5: a CSV whose header is one line of millions of fields took the
/// server's memory; the header's width is counted before reading.
#[test]
fn a_header_wider_than_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Longer than the sniffed head: the width is counted by streaming.
    let header = (0..200_000)
        .map(|i| format!("c{i}"))
        .collect::<Vec<_>>()
        .join(",");
    let path = write(dir.path(), "wide.csv", format!("{header}\n").as_bytes());
    let err = load(&path, &LoadOptions::default(), &Limits::default()).unwrap_err();
    assert!(matches!(err, IngestError::TooManyColumns { .. }), "{err}");
    // Within the head.
    let narrow = Limits {
        max_columns: 10,
        ..Limits::default()
    };
    let small = write(
        dir.path(),
        "twenty.csv",
        format!(
            "{}\n",
            (0..20)
                .map(|i| format!("c{i}"))
                .collect::<Vec<_>>()
                .join(",")
        )
        .as_bytes(),
    );
    let err = load(&small, &LoadOptions::default(), &narrow).unwrap_err();
    assert!(matches!(err, IngestError::TooManyColumns { .. }), "{err}");
}

/// Defect 13: `skip_rows` of 10^15 on a 3-line CSV spun a core for ages.
#[test]
fn an_absurd_skip_rows_fails_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "small.csv", b"a,b\n1,2\n3,4\n");
    let opts = LoadOptions {
        skip_rows: 1_000_000_000_000_000,
        ..LoadOptions::default()
    };
    let err = load(&path, &opts, &Limits::default()).unwrap_err();
    assert!(matches!(err, IngestError::InvalidOption(_)), "{err}");
    assert!(err.to_string().contains("skip"), "{err}");
}

/// The displayed path, not the path opened, is what errors and table names
/// use (the server opens files itself and reads them through the
/// descriptor).
#[test]
fn a_source_is_read_at_one_path_and_named_after_another() {
    let dir = tempfile::tempdir().unwrap();
    let real = write(dir.path(), "opened.bin", b"a,b\n1,2\n");
    let src = Source {
        read: real,
        shown: dir.path().join("sales.csv"),
    };
    let result = dfmcp_ingest::load(&src, &LoadOptions::default(), &Limits::default()).unwrap();
    assert_eq!(result.tables[0].name, "sales");
    let empty = write(dir.path(), "empty.bin", b"");
    let src = Source {
        read: empty,
        shown: dir.path().join("shown.csv"),
    };
    let err = dfmcp_ingest::load(&src, &LoadOptions::default(), &Limits::default()).unwrap_err();
    assert!(err.to_string().contains("shown.csv"), "{err}");
}

/// Regression: "04/05/2024" loaded as 4 May without a word, so a month-first
/// file's dates all moved. Dates that read both ways stay text, with a note
/// naming parse_dates; a day over 12 settles it.
#[test]
fn dates_that_read_both_ways_stay_text() {
    let dir = tempfile::tempdir().unwrap();
    let (df, notes) = load_one(
        &write(
            dir.path(),
            "ambiguous.csv",
            b"either,settled\n04/05/2024,04/05/2024\n01/02/2024,25/02/2024\n",
        ),
        &LoadOptions::default(),
    );
    assert_eq!(df.column("either").unwrap().dtype(), &DataType::String);
    assert_eq!(df.column("settled").unwrap().dtype(), &DataType::Date);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("either") && n.contains("parse_dates")),
        "{notes:?}"
    );
}
