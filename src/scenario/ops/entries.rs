//! A scenario's `ops:` key → the operation cases it names (validated, distinct, in order).
//!
//! Forms: `ops: paper` (all 85 cases), or a list whose entries are `paper: MatMul` (the paper's
//! cases of a family), `paper: all`, `paper: "MatMul dim=…"` (one paper case),
//! `{op: Softmax, dims: [64, 1000], axis: 1}` (a new case; `dims` is one shape or a list of
//! shapes) or a case in the paper's notation, `"Softmax dim=64x1000 axis=1"`.

use serde_yaml::Value;

use super::case::{paper_cases, OpCase};
use super::family::Family;

const FORMS: &str = "`ops: paper`, or a list of entries such as `- paper: MatMul`, `- paper: \"Softmax dim=64x1000000 axis=-1\"`, `- {op: Softmax, dims: [64, 1000], axis: 1}` or `- \"Softmax dim=64x1000 axis=1\"`";

/// Expands the `ops:` value into checked, distinct cases; an error carries the key and the message.
pub fn cases_of(ops: &Value) -> std::result::Result<Vec<OpCase>, (String, String)> {
    let entries: Vec<(String, &Value)> = match ops {
        Value::String(s) if s.trim() == "paper" => return Ok(all_paper()),
        Value::Sequence(list) if !list.is_empty() => list.iter().enumerate().map(|(i, v)| (format!("ops[{i}]"), v)).collect(),
        Value::Sequence(_) => return Err(("ops".into(), format!("is empty\n  fix: write {FORMS}"))),
        other => return Err(("ops".into(), format!("= {} is not an operation list\n  fix: write {FORMS}", show(other)))),
    };
    let mut cases: Vec<OpCase> = Vec::new();
    for (key, entry) in entries {
        for case in entry_cases(&key, entry)? {
            if cases.contains(&case) {
                return Err((key, format!("lists `{}` again\n  fix: list each case once", case.name())));
            }
            case.check().map_err(|e| (key.clone(), format!("is not a valid case: {e:#}")))?;
            cases.push(case);
        }
    }
    Ok(cases)
}

fn all_paper() -> Vec<OpCase> {
    paper_cases().iter().map(|p| p.case.clone()).collect()
}

fn entry_cases(key: &str, entry: &Value) -> std::result::Result<Vec<OpCase>, (String, String)> {
    let err = |k: &str, msg: String| (k.to_string(), msg);
    let map = match entry {
        Value::String(text) => return OpCase::parse(text).map(|c| vec![c]).map_err(|e| err(key, format!("= `{text}`: {e:#}"))),
        Value::Mapping(m) => m,
        other => return Err(err(key, format!("= {} is not an operation entry\n  fix: write {FORMS}", show(other)))),
    };
    let mut fields = std::collections::BTreeMap::new();
    for (k, v) in map {
        let name = k.as_str().unwrap_or("").to_string();
        if !["paper", "op", "dims", "axis"].contains(&name.as_str()) {
            return Err(err(&format!("{key}.{}", show(k)), "is not a key an operation entry takes\n  fix: use `paper`, or `op` with `dims` and (for some operations) `axis`".into()));
        }
        fields.insert(name, v);
    }
    if let Some(p) = fields.get("paper") {
        let k = format!("{key}.paper");
        if fields.len() > 1 {
            return Err(err(key, "gives `paper` with other keys\n  fix: `paper: MatMul` alone, or `op`/`dims`/`axis` for a new case".into()));
        }
        let Some(text) = p.as_str() else { return Err(err(&k, format!("= {} is not a name\n  fix: e.g. `paper: MatMul`", show(p)))) };
        return paper_entry(&k, text);
    }
    let Some(op) = fields.get("op") else {
        return Err(err(key, "names no operation\n  fix: add `op: Softmax` (with `dims`), or use `paper: Softmax`".into()));
    };
    let family = op.as_str().and_then(Family::from_name).ok_or_else(|| {
        err(&format!("{key}.op"), format!("= {} is not one of the paper's operations\n  fix: use one of: {}", show(op), Family::names()))
    })?;
    let dims = fields.get("dims").ok_or_else(|| {
        err(key, format!("gives no `dims`\n  fix: e.g. `{{op: {family}, dims: {}}}`", dims_example(family)))
    })?;
    let shapes = shapes_of(dims).map_err(|m| err(&format!("{key}.dims"), format!("= {}: {m}\n  fix: e.g. `dims: {}`", show(dims), dims_example(family))))?;
    let axis = match fields.get("axis") {
        None => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| err(&format!("{key}.axis"), format!("= {} is not a whole number\n  fix: e.g. `axis: -1`", show(v))))?),
    };
    Ok(vec![OpCase::new(family, shapes, axis)])
}

fn paper_entry(key: &str, text: &str) -> std::result::Result<Vec<OpCase>, (String, String)> {
    if text.trim() == "all" {
        return Ok(all_paper());
    }
    if let Some(family) = Family::from_name(text) {
        return Ok(paper_cases().iter().filter(|p| p.case.family == family).map(|p| p.case.clone()).collect());
    }
    let case = OpCase::parse(text).map_err(|e| (key.to_string(), format!("= `{text}`: {e:#}")))?;
    if !paper_cases().iter().any(|p| p.case == case) {
        let same: Vec<String> = paper_cases().iter().filter(|p| p.case.family == case.family).map(|p| format!("`{}`", p.case.dims_text())).collect();
        return Err((
            key.to_string(),
            format!("= `{text}` is not one of the paper's cases\n  fix: the paper's {} cases are {}; for a new case write `op:` and `dims:` instead of `paper:`", case.family, same.join(", ")),
        ));
    }
    Ok(vec![case])
}

/// `[64, 1000]` (one shape) or `[[1000, 64], [64, 32]]` (several).
fn shapes_of(v: &Value) -> std::result::Result<Vec<Vec<i64>>, String> {
    let Value::Sequence(items) = v else { return Err("is not a list".into()) };
    if items.is_empty() {
        return Err("is empty".into());
    }
    if items.iter().all(|i| i.is_i64()) {
        return Ok(vec![items.iter().filter_map(Value::as_i64).collect()]);
    }
    items
        .iter()
        .map(|s| match s {
            Value::Sequence(d) if !d.is_empty() && d.iter().all(|x| x.is_i64()) => Ok(d.iter().filter_map(Value::as_i64).collect()),
            _ => Err(format!("{} is not a shape (a list of whole numbers)", show(s))),
        })
        .collect()
}

fn dims_example(f: Family) -> &'static str {
    match f.operands().len() {
        1 => "[64, 1000]",
        2 if f == Family::Gather || f.name().starts_with("Scatter") => "[[64, 256], [1000]]",
        2 if f == Family::PRelu => "[[128, 1024], [1]]",
        2 => "[[1000, 64], [64, 32]]",
        _ => "[[100, 1024, 32], [32, 1024], [1024]]",
    }
}

fn show(v: &Value) -> String {
    serde_yaml::to_string(v).map(|s| s.trim().replace('\n', " ")).unwrap_or_else(|_| "?".into())
}
