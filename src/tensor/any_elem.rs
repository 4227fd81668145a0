//! An element type as a graph declares it or a record holds it: one xbench knows, or another kept
//! as it was read (`type#25`, `unknown`), so that a model or results file naming a type this
//! xbench does not know still reads and writes back unchanged.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::ElemType;

/// An element type, known or not; written as ONNX's name of the type, or as it was read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AnyElemType {
    Known(ElemType),
    /// A type xbench has no name for, as read: `type#N` for ONNX's number N, `unknown` where the
    /// graph declares none.
    Other(String),
}

impl AnyElemType {
    /// The type, when it is one xbench knows.
    pub fn known(&self) -> Option<ElemType> {
        match self {
            AnyElemType::Known(t) => Some(*t),
            AnyElemType::Other(_) => None,
        }
    }

    /// The type of ONNX's `TensorProto.DataType` number (`type#N` for one xbench has no name for).
    pub fn from_onnx_code(code: i32) -> AnyElemType {
        ElemType::from_onnx_code(code).map_or_else(|| AnyElemType::Other(format!("type#{code}")), AnyElemType::Known)
    }
}

impl From<ElemType> for AnyElemType {
    fn from(t: ElemType) -> Self {
        AnyElemType::Known(t)
    }
}

impl From<&str> for AnyElemType {
    /// ONNX's name of a type (see [`ElemType::from_name`]); any other text is kept as it is.
    fn from(name: &str) -> Self {
        ElemType::from_name(name).map_or_else(|| AnyElemType::Other(name.to_string()), AnyElemType::Known)
    }
}

impl PartialEq<ElemType> for AnyElemType {
    fn eq(&self, other: &ElemType) -> bool {
        self.known() == Some(*other)
    }
}

impl fmt::Display for AnyElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnyElemType::Known(t) => f.write_str(t.name()),
            AnyElemType::Other(s) => f.write_str(s),
        }
    }
}

impl Serialize for AnyElemType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AnyElemType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(AnyElemType::from(String::deserialize(d)?.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_type_reads_back_from_its_name_and_others_are_kept_as_read() {
        for t in ElemType::ALL {
            let json = serde_json::to_string(&AnyElemType::from(t)).unwrap();
            assert_eq!(json, format!("\"{}\"", t.name()), "written as ONNX's name");
            assert_eq!(serde_json::from_str::<AnyElemType>(&json).unwrap(), AnyElemType::Known(t));
            assert_eq!(AnyElemType::from_onnx_code(t.onnx_code()), t);
        }
        for raw in ["type#25", "unknown", "complex64"] {
            let read: AnyElemType = serde_json::from_str(&format!("\"{raw}\"")).unwrap();
            assert_eq!((read.known(), read.to_string()), (None, raw.to_string()));
            assert_eq!(serde_json::to_string(&read).unwrap(), format!("\"{raw}\""), "written back unchanged");
        }
        assert_eq!(AnyElemType::from_onnx_code(25), AnyElemType::Other("type#25".into()));
        assert_eq!(AnyElemType::from("float"), ElemType::Float32);
        assert!(serde_json::from_str::<AnyElemType>("7").is_err(), "a name, not a number");
    }
}
