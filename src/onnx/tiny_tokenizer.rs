//! The tiny decoder's tokenizer: byte-level (GPT-2's byte-to-character mapping), one token per
//! byte (a BPE of the 256 byte symbols with no merges), and three special tokens: `<pad>`, `<s>`
//! (begin of sequence, added at the start of every encoding) and `</s>` (end of sequence).

use anyhow::{anyhow, Result};
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, Tokenizer};

/// Padding token id.
pub const PAD_ID: u32 = 0;
/// Begin-of-sequence token id.
pub const BOS_ID: u32 = 1;
/// End-of-sequence token id.
pub const EOS_ID: u32 = 2;
/// Id of byte 0; byte `b` is `FIRST_BYTE_ID + b`.
pub const FIRST_BYTE_ID: u32 = 3;
/// The three special tokens and the 256 bytes.
pub const VOCAB_SIZE: usize = 259;

const SPECIAL: [(&str, u32); 3] = [("<pad>", PAD_ID), ("<s>", BOS_ID), ("</s>", EOS_ID)];

/// The character GPT-2's byte-level mapping (what `ByteLevel` pre-tokenizes into) gives byte `b`:
/// printable bytes stand for themselves, the others take the characters from U+0100 on, in order.
fn byte_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return b as char;
    }
    let rank = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + rank).expect("U+0100..U+0143 are characters")
}

/// The tokenizer.
pub fn tokenizer() -> Result<Tokenizer> {
    let vocab: Vocab = SPECIAL
        .iter()
        .map(|&(t, id)| (t.to_string(), id))
        .chain((0..=255u8).map(|b| (byte_char(b).to_string(), FIRST_BYTE_ID + b as u32)))
        .collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, Vec::new()).build().map_err(|e| anyhow!("byte-level BPE: {e}"))?;
    let mut t = Tokenizer::new(bpe);
    let byte_level = ByteLevel::default().add_prefix_space(false);
    t.with_pre_tokenizer(Some(byte_level));
    t.with_decoder(Some(byte_level));
    let template = TemplateProcessing::builder()
        .try_single("<s> $A")
        .and_then(|b| b.try_pair("<s> $A <s> $B"))
        .map_err(|e| anyhow!("template: {e}"))?
        .special_tokens(vec![("<s>", BOS_ID)])
        .build()
        .map_err(|e| anyhow!("template: {e}"))?;
    t.with_post_processor(Some(template));
    t.add_special_tokens(SPECIAL.iter().map(|&(s, _)| AddedToken::from(s, true))).map_err(|e| anyhow!("special tokens: {e}"))?;
    Ok(t)
}

/// The tokenizer as `tokenizer.json` text (the same bytes every time).
pub fn json() -> Result<String> {
    Ok(tokenizer()?.to_string(true).map_err(|e| anyhow!("tokenizer.json: {e}"))? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_map_to_their_own_ids_and_round_trip() {
        let chars: std::collections::HashSet<char> = (0..=255u8).map(byte_char).collect();
        assert_eq!(chars, ByteLevel::alphabet().into_iter().collect(), "the byte characters are ByteLevel's alphabet");
        let t: Tokenizer = json().unwrap().parse().unwrap();
        assert_eq!(t.get_vocab_size(true), VOCAB_SIZE);
        let text = "Hé <s>\n";
        let enc = t.encode(text, true).unwrap();
        let mut want = vec![BOS_ID];
        want.extend(b"H\xc3\xa9 ".iter().map(|&b| FIRST_BYTE_ID + b as u32));
        want.push(BOS_ID);
        want.push(FIRST_BYTE_ID + b'\n' as u32);
        assert_eq!(enc.get_ids(), &want[..], "one id per byte, <s> first and kept as a special token in the text");
        assert_eq!(t.decode(&enc.get_ids()[1..], false).unwrap(), "Hé <s>\n");
        assert_eq!(t.token_to_id("</s>"), Some(EOS_ID));
        assert_eq!(t.token_to_id("<pad>"), Some(PAD_ID));
        assert_eq!(json().unwrap(), json().unwrap());
    }
}
