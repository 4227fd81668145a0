//! `generate:` in a scenario: the cells generate tokens from a prompt instead of running one
//! forward pass — prompt lengths (in tokens, or in characters of the text through the model's
//! tokenizer), tokens generated after it, and the scenario's batch sizes.

use serde::{Deserialize, Serialize};

/// `generate:` as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerateFile {
    /// Prompt lengths in tokens (special tokens included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_tokens: Vec<i64>,
    /// Prompt lengths in characters of the scenario's text, tokenized by the model's tokenizer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prompt_chars: Vec<i64>,
    /// Tokens generated after the prompt (greedy decoding).
    pub new_tokens: Vec<i64>,
    /// Seed of the token ids of a model without a tokenizer (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// How prompt lengths are counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptUnit {
    Tokens,
    Chars,
}

impl PromptUnit {
    pub fn name(self) -> &'static str {
        match self {
            PromptUnit::Tokens => "tokens",
            PromptUnit::Chars => "chars",
        }
    }
}

/// `generate:` validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateSpec {
    pub unit: PromptUnit,
    pub prompts: Vec<usize>,
    pub new_tokens: Vec<usize>,
    pub seed: u64,
}

/// Most tokens a cell may generate.
pub const MAX_NEW_TOKENS: i64 = 65_536;
/// Longest prompt, in tokens or characters.
pub const MAX_PROMPT: i64 = 1_000_000;

/// Validates `generate:`; an error names the key below `generate` and the fix.
pub fn validate(g: &GenerateFile, sizes: impl Fn(&[i64], &str, i64, i64, &str) -> Result<Vec<usize>, (String, String)>) -> Result<GenerateSpec, (String, String)> {
    let (unit, prompts) = match (g.prompt_tokens.is_empty(), g.prompt_chars.is_empty()) {
        (false, true) => (PromptUnit::Tokens, sizes(&g.prompt_tokens, "generate.prompt_tokens", 1, MAX_PROMPT, "[128, 512, 2048]")?),
        (true, false) => (PromptUnit::Chars, sizes(&g.prompt_chars, "generate.prompt_chars", 1, MAX_PROMPT, "[200, 1000]")?),
        (false, false) => return Err(("generate.prompt_chars".into(), "is given together with `generate.prompt_tokens`\n  fix: count prompt lengths one way: keep one of the two".into())),
        (true, true) => return Err(("generate".into(), "gives no prompt lengths\n  fix: add `prompt_tokens: [128, 512]` (or `prompt_chars:`, characters of the text through the model's tokenizer)".into())),
    };
    let new_tokens = sizes(&g.new_tokens, "generate.new_tokens", 1, MAX_NEW_TOKENS, "[128]")?;
    Ok(GenerateSpec { unit, prompts, new_tokens, seed: g.seed.unwrap_or(1) })
}
