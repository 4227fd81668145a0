//! The model name of an operation case: `op:` followed by the case in the paper's notation
//! (`op:Softmax dim=64x1000 axis=-1`). Plans, results, reports and the graph files build and
//! recognise the name here alone; results.json keeps it as written.

/// Prefix of every operation case's model name in plans, results and reports.
pub const OP_PREFIX: &str = "op:";

/// The model name of the operation case written as `case_text` (`Softmax dim=64x1000 axis=-1`).
pub fn op_name(case_text: &str) -> String {
    format!("{OP_PREFIX}{case_text}")
}

/// The case, in the paper's notation, that an operation case's model name stands for; `None` for
/// the name of any other model.
pub fn case_text(model: &str) -> Option<&str> {
    model.strip_prefix(OP_PREFIX)
}

/// True for the model name of an operation case (`op:Softmax dim=…`).
pub fn is_op(model: &str) -> bool {
    case_text(model).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_built_is_recognised_and_other_models_are_not() {
        let name = op_name("Softmax dim=4x5 axis=-1");
        assert_eq!(name, "op:Softmax dim=4x5 axis=-1");
        assert_eq!(case_text(&name), Some("Softmax dim=4x5 axis=-1"));
        assert!(is_op(&name));
        for model in ["tiny-bert", "Softmax dim=4x5", "opt:125m", " op:Softmax"] {
            assert_eq!((is_op(model), case_text(model)), (false, None), "{model}");
        }
    }
}
