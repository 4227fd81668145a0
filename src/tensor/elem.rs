//! ONNX's element types, by name and by number.

use serde::{Deserialize, Serialize};

/// An ONNX element type, named as ONNX names it (`float32`, `int64`, `bool`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ElemType {
    Float32,
    Float16,
    Bfloat16,
    Float64,
    Int8,
    Int16,
    Int32,
    Int64,
    Uint8,
    Uint16,
    Uint32,
    Uint64,
    Bool,
    String,
    /// 8-bit and smaller types, kept as ONNX packs them (see [`Packed`]).
    Float8E4M3FN,
    Float8E4M3FNUZ,
    Float8E5M2,
    Float8E5M2FNUZ,
    Uint4,
    Int4,
    Float4E2M1,
}

impl ElemType {
    pub const ALL: [ElemType; 21] = [
        ElemType::Float32,
        ElemType::Float16,
        ElemType::Bfloat16,
        ElemType::Float64,
        ElemType::Int8,
        ElemType::Int16,
        ElemType::Int32,
        ElemType::Int64,
        ElemType::Uint8,
        ElemType::Uint16,
        ElemType::Uint32,
        ElemType::Uint64,
        ElemType::Bool,
        ElemType::String,
        ElemType::Float8E4M3FN,
        ElemType::Float8E4M3FNUZ,
        ElemType::Float8E5M2,
        ElemType::Float8E5M2FNUZ,
        ElemType::Uint4,
        ElemType::Int4,
        ElemType::Float4E2M1,
    ];

    /// ONNX's name of the type, as `xbench models` shows it.
    pub fn name(self) -> &'static str {
        match self {
            ElemType::Float32 => "float32",
            ElemType::Float16 => "float16",
            ElemType::Bfloat16 => "bfloat16",
            ElemType::Float64 => "float64",
            ElemType::Int8 => "int8",
            ElemType::Int16 => "int16",
            ElemType::Int32 => "int32",
            ElemType::Int64 => "int64",
            ElemType::Uint8 => "uint8",
            ElemType::Uint16 => "uint16",
            ElemType::Uint32 => "uint32",
            ElemType::Uint64 => "uint64",
            ElemType::Bool => "bool",
            ElemType::String => "string",
            ElemType::Float8E4M3FN => "float8e4m3fn",
            ElemType::Float8E4M3FNUZ => "float8e4m3fnuz",
            ElemType::Float8E5M2 => "float8e5m2",
            ElemType::Float8E5M2FNUZ => "float8e5m2fnuz",
            ElemType::Uint4 => "uint4",
            ElemType::Int4 => "int4",
            ElemType::Float4E2M1 => "float4e2m1",
        }
    }

    /// The type of ONNX's name (`float` and `double` too).
    pub fn from_name(name: &str) -> Option<ElemType> {
        match name {
            "float" => Some(ElemType::Float32),
            "double" => Some(ElemType::Float64),
            _ => ElemType::ALL.into_iter().find(|t| t.name() == name),
        }
    }

    /// Signed integer types (`int4` … `int64`).
    pub fn is_signed_int(self) -> bool {
        matches!(self, ElemType::Int4 | ElemType::Int8 | ElemType::Int16 | ElemType::Int32 | ElemType::Int64)
    }

    /// ONNX's `TensorProto.DataType` number.
    pub fn onnx_code(self) -> i32 {
        match self {
            ElemType::Float32 => 1,
            ElemType::Uint8 => 2,
            ElemType::Int8 => 3,
            ElemType::Uint16 => 4,
            ElemType::Int16 => 5,
            ElemType::Int32 => 6,
            ElemType::Int64 => 7,
            ElemType::String => 8,
            ElemType::Bool => 9,
            ElemType::Float16 => 10,
            ElemType::Float64 => 11,
            ElemType::Uint32 => 12,
            ElemType::Uint64 => 13,
            ElemType::Bfloat16 => 16,
            ElemType::Float8E4M3FN => 17,
            ElemType::Float8E4M3FNUZ => 18,
            ElemType::Float8E5M2 => 19,
            ElemType::Float8E5M2FNUZ => 20,
            ElemType::Uint4 => 21,
            ElemType::Int4 => 22,
            ElemType::Float4E2M1 => 23,
        }
    }

    pub fn from_onnx_code(code: i32) -> Option<ElemType> {
        ElemType::ALL.into_iter().find(|t| t.onnx_code() == code)
    }

    /// Bits per element of the types kept packed (8-bit floats, 4-bit types).
    pub fn packed_bits(self) -> Option<usize> {
        match self {
            ElemType::Float8E4M3FN | ElemType::Float8E4M3FNUZ | ElemType::Float8E5M2 | ElemType::Float8E5M2FNUZ => Some(8),
            ElemType::Uint4 | ElemType::Int4 | ElemType::Float4E2M1 => Some(4),
            _ => None,
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, ElemType::Float32 | ElemType::Float16 | ElemType::Bfloat16 | ElemType::Float64 | ElemType::Float8E4M3FN | ElemType::Float8E4M3FNUZ | ElemType::Float8E5M2 | ElemType::Float8E5M2FNUZ | ElemType::Float4E2M1)
    }

    /// Bytes per element (strings and packed types have none).
    pub fn size(self) -> Option<usize> {
        Some(match self {
            ElemType::Int8 | ElemType::Uint8 | ElemType::Bool => 1,
            ElemType::Float16 | ElemType::Bfloat16 | ElemType::Int16 | ElemType::Uint16 => 2,
            ElemType::Float32 | ElemType::Int32 | ElemType::Uint32 => 4,
            ElemType::Float64 | ElemType::Int64 | ElemType::Uint64 => 8,
            _ => return None,
        })
    }
}

impl std::str::FromStr for ElemType {
    type Err = String;

    /// Reads ONNX's name of the type (see [`ElemType::from_name`]).
    fn from_str(name: &str) -> Result<ElemType, String> {
        ElemType::from_name(name).ok_or_else(|| format!("unknown ONNX element type `{name}`"))
    }
}

impl std::fmt::Display for ElemType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

