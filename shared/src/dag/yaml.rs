//! A YAML document as a tree of nodes that remember where they were written, built from
//! saphyr-parser's events. Scalars are typed by YAML 1.2's core schema (so `on: yes` stays a
//! string, unlike YAML 1.1). Anchors and aliases work; duplicate keys and alias bombs are
//! reported, never followed.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};

/// Where a node starts: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    fn from_span(span: &Span) -> Self {
        Pos {
            line: span.start.line() as u32,
            column: span.start.col() as u32 + 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub pos: Pos,
    /// A literal (`|`) or folded (`>`) block scalar: its text starts on the line after the
    /// indicator, and `pos` is where its first non-blank line starts (the block's indentation).
    pub block: bool,
}

impl Node {
    /// What the node is, in words for error messages.
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A mapping key as text (keys are usually strings; `1: x` has the key "1").
    pub fn key_text(&self) -> String {
        match &self.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".into(),
            Value::Seq(_) | Value::Map(_) => "<complex key>".into(),
        }
    }
}

/// A YAML problem: where and what.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub pos: Pos,
    pub message: String,
}

/// More nodes than this (counting alias expansions) is refused: a DAG file is small, and a
/// "billion laughs" document must not eat the scheduler's memory.
const MAX_NODES: usize = 1_000_000;
/// Likewise for the text of scalars, counting alias expansions: a 30 KB string aliased a
/// thousand times a thousand times must not be built either.
const MAX_TEXT_BYTES: usize = 64 * 1024 * 1024;
/// Nesting deeper than this is refused (the parser recurses on nothing, but consumers do).
const MAX_DEPTH: usize = 64;

enum Frame {
    Seq {
        items: Vec<Node>,
        pos: Pos,
        anchor: usize,
    },
    Map {
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        /// Hash of each key → indexes of the entries with that hash, so that finding a
        /// duplicate key stays linear in the size of a large mapping.
        keys: HashMap<u64, Vec<usize>>,
        pos: Pos,
        anchor: usize,
    },
}

/// Parses one YAML document. Errors: syntax (with position), several documents, duplicate
/// keys, unknown aliases, too many nodes.
pub fn parse(text: &str) -> Result<Option<Node>, Vec<YamlError>> {
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: Vec<(usize, Node)> = Vec::new();
    let mut root: Option<Node> = None;
    let mut documents = 0;
    let mut nodes = 0usize;
    let mut text_bytes = 0usize;
    let mut errors = Vec::new();

    for item in Parser::new_from_str(text) {
        let (event, span) = match item {
            Ok(ev) => ev,
            Err(e) => {
                let m = e.marker();
                errors.push(YamlError {
                    pos: Pos {
                        line: m.line() as u32,
                        column: m.col() as u32 + 1,
                    },
                    message: format!(
                        "YAML syntax error: {}; check the indentation, quotes and brackets here and on the line before",
                        e.info()
                    ),
                });
                return Err(errors);
            }
        };
        let pos = Pos::from_span(&span);
        let finished = match event {
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    errors.push(YamlError {
                        pos,
                        message: "a second YAML document (`---`): a DAG file holds exactly one DAG; move the other into its own file".into(),
                    });
                    return Err(errors);
                }
                None
            }
            Event::Scalar(text, style, anchor, tag) => {
                nodes += 1;
                text_bytes += text.len();
                let node = scalar(&text, style, tag.as_deref(), pos);
                if anchor > 0 {
                    text_bytes += text.len();
                    anchors.push((anchor, node.clone()));
                }
                Some(node)
            }
            Event::Alias(id) => match anchors.iter().rev().find(|(a, _)| *a == id) {
                Some((_, node)) => {
                    let (n, bytes) = size(node);
                    nodes += n;
                    text_bytes += bytes;
                    let mut node = node.clone();
                    node.pos = pos;
                    Some(node)
                }
                None => {
                    errors.push(YamlError {
                        pos,
                        message: "an alias (`*name`) refers to an anchor that is not defined before it; define the anchor (`&name`) first or fix the name".into(),
                    });
                    return Err(errors);
                }
            },
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    pos,
                    anchor,
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    entries: Vec::new(),
                    pending_key: None,
                    keys: HashMap::new(),
                    pos,
                    anchor,
                });
                None
            }
            Event::SequenceEnd | Event::MappingEnd => {
                nodes += 1;
                let (node, anchor) = match stack.pop() {
                    Some(Frame::Seq { items, pos, anchor }) => (
                        Node {
                            value: Value::Seq(items),
                            pos,
                            block: false,
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        entries,
                        pos,
                        anchor,
                        ..
                    }) => (
                        Node {
                            value: Value::Map(entries),
                            pos,
                            block: false,
                        },
                        anchor,
                    ),
                    None => continue,
                };
                if anchor > 0 {
                    // The copy kept for aliases counts too (nested anchors copy their insides).
                    let (n, bytes) = size(&node);
                    nodes += n;
                    text_bytes += bytes;
                    anchors.push((anchor, node.clone()));
                }
                Some(node)
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => None,
        };
        if nodes > MAX_NODES || text_bytes > MAX_TEXT_BYTES {
            errors.push(YamlError {
                pos,
                message: format!("the document expands to more than {MAX_NODES} nodes or {} MiB of text (aliases included); a DAG file should be far smaller, so use fewer aliases", MAX_TEXT_BYTES >> 20),
            });
            return Err(errors);
        }
        if stack.len() > MAX_DEPTH {
            errors.push(YamlError {
                pos,
                message: format!("nesting deeper than {MAX_DEPTH} levels; a DAG file needs far fewer, so flatten the structure"),
            });
            return Err(errors);
        }
        let Some(node) = finished else { continue };
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                keys,
                ..
            }) => match pending_key.take() {
                None => *pending_key = Some(node),
                Some(key) => {
                    let mut hasher = DefaultHasher::new();
                    hash_value(&key.value, &mut hasher);
                    let same_hash = keys.entry(hasher.finish()).or_default();
                    let first = same_hash
                        .iter()
                        .map(|i| &entries[*i].0)
                        .find(|k| k.value == key.value);
                    if let Some(first) = first {
                        errors.push(YamlError {
                            pos: key.pos,
                            message: format!(
                                "duplicate key `{}` (first at line {}): YAML would silently keep only the last one; remove or rename one",
                                key.key_text(),
                                first.pos.line
                            ),
                        });
                    }
                    same_hash.push(entries.len());
                    entries.push((key, node));
                }
            },
        }
    }
    if errors.is_empty() {
        Ok(root)
    } else {
        Err(errors)
    }
}

/// Nodes and bytes of scalar text in a tree.
fn size(node: &Node) -> (usize, usize) {
    let add = |(n1, b1): (usize, usize), (n2, b2): (usize, usize)| (n1 + n2, b1 + b2);
    match &node.value {
        Value::Seq(items) => items.iter().map(size).fold((1, 0), add),
        Value::Map(entries) => entries
            .iter()
            .map(|(k, v)| add(size(k), size(v)))
            .fold((1, 0), add),
        Value::Str(s) => (1, s.len()),
        _ => (1, 0),
    }
}

/// A hash consistent with `Value`'s `==` (floats by their bits: a hash miss on `0.0` vs
/// `-0.0` or NaN only skips a duplicate-key report).
fn hash_value(value: &Value, h: &mut impl Hasher) {
    std::mem::discriminant(value).hash(h);
    match value {
        Value::Null => {}
        Value::Bool(b) => b.hash(h),
        Value::Int(i) => i.hash(h),
        Value::Float(f) => f.to_bits().hash(h),
        Value::Str(s) => s.hash(h),
        Value::Seq(items) => {
            items.len().hash(h);
            items.iter().for_each(|n| hash_node(n, h));
        }
        Value::Map(entries) => {
            entries.len().hash(h);
            for (k, v) in entries {
                hash_node(k, h);
                hash_node(v, h);
            }
        }
    }
}

/// `Node`'s `==` compares the value, the position and `block`.
fn hash_node(node: &Node, h: &mut impl Hasher) {
    hash_value(&node.value, h);
    node.pos.line.hash(h);
    node.pos.column.hash(h);
    node.block.hash(h);
}

fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>, pos: Pos) -> Node {
    let block = matches!(style, ScalarStyle::Literal | ScalarStyle::Folded);
    let value = if style != ScalarStyle::Plain || tag.is_some_and(|t| t.suffix == "str") {
        Value::Str(text.to_string())
    } else {
        plain(text)
    };
    Node { value, pos, block }
}

/// YAML 1.2 core schema resolution of a plain scalar.
fn plain(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY)
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let bytes = text.as_bytes();
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits_only(unsigned) {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
    }
    if let Some(hex) = text.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Int(i);
        }
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(oct, 8) {
            return Value::Int(i);
        }
    }
    let looks_numeric = bytes
        .iter()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && bytes.iter().any(u8::is_ascii_digit);
    if looks_numeric {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).unwrap().unwrap()
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let node = root("a: 1\nb: '1'\nc: yes\nd: true\ne: 1.5\nf: ~\ng: 2024-02-01\n");
        let Value::Map(entries) = node.value else {
            panic!()
        };
        let values: Vec<&Value> = entries.iter().map(|(_, v)| &v.value).collect();
        assert_eq!(values[0], &Value::Int(1));
        assert_eq!(values[1], &Value::Str("1".into()));
        assert_eq!(values[2], &Value::Str("yes".into()));
        assert_eq!(values[3], &Value::Bool(true));
        assert_eq!(values[4], &Value::Float(1.5));
        assert_eq!(values[5], &Value::Null);
        assert_eq!(values[6], &Value::Str("2024-02-01".into()));
    }

    #[test]
    fn positions_are_one_based() {
        let node = root("a:\n  b: x\n");
        let Value::Map(entries) = &node.value else {
            panic!()
        };
        let Value::Map(inner) = &entries[0].1.value else {
            panic!()
        };
        assert_eq!(inner[0].0.pos, Pos { line: 2, column: 3 });
        assert_eq!(inner[0].1.pos, Pos { line: 2, column: 6 });
    }

    #[test]
    fn duplicate_keys_and_syntax_errors_are_reported() {
        let err = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(err[0].pos.line, 3);
        assert!(err[0]
            .message
            .contains("duplicate key `a` (first at line 1)"));
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err[0].message.starts_with("YAML syntax error"), "{err:?}");
    }

    #[test]
    fn aliases_expand_and_bombs_are_refused() {
        let node = root("x: &a [1, 2]\ny: *a\n");
        let Value::Map(entries) = node.value else {
            panic!()
        };
        assert_eq!(entries[1].1.value, entries[0].1.value);
        let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..8 {
            let prev = if i == 0 {
                "a".to_string()
            } else {
                format!("l{}", i - 1)
            };
            bomb.push_str(&format!("l{i}: &l{i} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]\n"));
        }
        let err = parse(&bomb).unwrap_err();
        assert!(err[0].message.contains("more than"), "{err:?}");
    }

    #[test]
    fn a_second_document_is_refused() {
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert!(err[0].message.contains("exactly one DAG"));
    }
}
