//! Placement constraints: `KEY==VALUE` / `KEY!=VALUE` expressions over a node's identity,
//! role, platform and labels (SwarmKit's `manager/constraint`).
//!
//! | key                  | compared with                          | case       |
//! |----------------------|----------------------------------------|------------|
//! | `node.id`            | `node.id`                              | insensitive|
//! | `node.hostname`      | `node.description.hostname`            | insensitive|
//! | `node.role`          | `node.role` (`manager` or `worker`)    | insensitive|
//! | `node.platform.os`   | `node.description.platform.os`         | insensitive|
//! | `node.platform.arch` | `node.description.platform.architecture` | insensitive|
//! | `node.labels.<name>` | `node.spec.annotations.labels[name]`   | exact      |
//! | `engine.labels.<name>` | `node.description.engine_labels[name]` | exact    |
//!
//! Keys are case-insensitive except the label name. Whitespace around the operator is
//! ignored. A label the node does not carry is "not equal" to every value, so `==` fails and
//! `!=` holds. Values use SwarmKit's character set (letters, digits, spaces and
//! `: - _ . * ( ) ? + [ ] \ ^ $ | /`), so no future operator (`<`, `>`, `~`, `=`) can hide in
//! one. `node.ip` is not supported (nodes carry no reliable IP yet).
//!
//! [`parse`] is what the Control API calls to validate a service spec, so its errors are
//! written for the user who typed the expression.

use std::fmt;

use swarm_proto::{Node, NodeRole};

/// The keys a constraint may name, for error messages.
const EXPECTED_KEYS: &str = "node.id, node.hostname, node.role, node.platform.os, \
                             node.platform.arch, node.labels.<name> or engine.labels.<name>";

const NODE_LABELS: &str = "node.labels.";
const ENGINE_LABELS: &str = "engine.labels.";

/// Why a constraint expression is not valid. Every message quotes the expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    #[error("invalid constraint {expr:?}: expected KEY==VALUE or KEY!=VALUE")]
    MissingOperator { expr: String },
    #[error("invalid constraint {expr:?}: unknown key {key:?}; expected {EXPECTED_KEYS}")]
    UnknownKey { expr: String, key: String },
    #[error(
        "invalid constraint {expr:?}: label name {name:?} may only hold letters, digits and - _ ."
    )]
    InvalidLabelName { expr: String, name: String },
    #[error("invalid constraint {expr:?}: missing value after {op}")]
    MissingValue { expr: String, op: Op },
    #[error(
        "invalid constraint {expr:?}: value {value:?} may only hold letters, digits, spaces and : - _ . * ( ) ? + [ ] \\ ^ $ | /"
    )]
    InvalidValue { expr: String, value: String },
    #[error("invalid constraint {expr:?}: node.role is manager or worker, not {value:?}")]
    InvalidRole { expr: String, value: String },
}

/// The comparison of a constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    NotEq,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Eq => "==",
            Op::NotEq => "!=",
        })
    }
}

/// What a constraint looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    NodeId,
    NodeHostname,
    NodeRole,
    NodePlatformOs,
    NodePlatformArch,
    /// A label of the node's spec (set by `swarmctl node update --label-add`).
    NodeLabel(String),
    /// A label the node's agent reports (`swarm-agent --label`).
    EngineLabel(String),
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::NodeId => f.write_str("node.id"),
            Key::NodeHostname => f.write_str("node.hostname"),
            Key::NodeRole => f.write_str("node.role"),
            Key::NodePlatformOs => f.write_str("node.platform.os"),
            Key::NodePlatformArch => f.write_str("node.platform.arch"),
            Key::NodeLabel(l) => write!(f, "{NODE_LABELS}{l}"),
            Key::EngineLabel(l) => write!(f, "{ENGINE_LABELS}{l}"),
        }
    }
}

/// One parsed constraint. Displays in canonical form (`node.labels.zone==eu`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    pub key: Key,
    pub op: Op,
    pub value: String,
}

impl fmt::Display for Constraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.key, self.op, self.value)
    }
}

/// Parses one constraint expression (`node.role == manager`).
pub fn parse(expr: &str) -> Result<Constraint, ConstraintError> {
    let err_expr = || expr.to_string();
    // The leftmost operator splits the expression; the value's character set excludes `=`
    // and `!`, so a second operator is caught as an invalid value.
    let (at, op) = [("==", Op::Eq), ("!=", Op::NotEq)]
        .into_iter()
        .filter_map(|(s, op)| expr.find(s).map(|at| (at, op)))
        .min_by_key(|(at, _)| *at)
        .ok_or_else(|| ConstraintError::MissingOperator { expr: err_expr() })?;
    let key_text = expr[..at].trim();
    let value = expr[at + 2..].trim();
    let key = parse_key(expr, key_text)?;
    if value.is_empty() {
        return Err(ConstraintError::MissingValue {
            expr: err_expr(),
            op,
        });
    }
    if !value.chars().all(is_value_char) {
        return Err(ConstraintError::InvalidValue {
            expr: err_expr(),
            value: value.to_string(),
        });
    }
    if key == Key::NodeRole
        && !value.eq_ignore_ascii_case("manager")
        && !value.eq_ignore_ascii_case("worker")
    {
        return Err(ConstraintError::InvalidRole {
            expr: err_expr(),
            value: value.to_string(),
        });
    }
    Ok(Constraint {
        key,
        op,
        value: value.to_string(),
    })
}

/// Parses every expression of a placement, stopping at the first invalid one.
pub fn parse_all<S: AsRef<str>>(exprs: &[S]) -> Result<Vec<Constraint>, ConstraintError> {
    exprs.iter().map(|e| parse(e.as_ref())).collect()
}

fn parse_key(expr: &str, key: &str) -> Result<Key, ConstraintError> {
    let fixed = [
        ("node.id", Key::NodeId),
        ("node.hostname", Key::NodeHostname),
        ("node.role", Key::NodeRole),
        ("node.platform.os", Key::NodePlatformOs),
        ("node.platform.arch", Key::NodePlatformArch),
    ];
    if let Some((_, k)) = fixed.into_iter().find(|(s, _)| key.eq_ignore_ascii_case(s)) {
        return Ok(k);
    }
    let (name, make): (&str, fn(String) -> Key) =
        if let Some(name) = strip_prefix_ci(key, NODE_LABELS) {
            (name, Key::NodeLabel)
        } else if let Some(name) = strip_prefix_ci(key, ENGINE_LABELS) {
            (name, Key::EngineLabel)
        } else {
            return Err(ConstraintError::UnknownKey {
                expr: expr.to_string(),
                key: key.to_string(),
            });
        };
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(ConstraintError::InvalidLabelName {
            expr: expr.to_string(),
            name: name.to_string(),
        });
    }
    Ok(make(name.to_string()))
}

/// `s` without `prefix`, compared case-insensitively.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn is_value_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c.is_whitespace()
        || matches!(
            c,
            ':' | '-'
                | '_'
                | '.'
                | '*'
                | '('
                | ')'
                | '?'
                | '+'
                | '['
                | ']'
                | '\\'
                | '^'
                | '$'
                | '|'
                | '/'
        )
}

impl Constraint {
    /// True when `node` satisfies this constraint.
    pub fn matches(&self, node: &Node) -> bool {
        let desc = node.description.as_ref();
        let platform = desc.and_then(|d| d.platform.as_ref());
        let equal = match &self.key {
            Key::NodeId => node.id.eq_ignore_ascii_case(&self.value),
            Key::NodeHostname => desc
                .map_or("", |d| d.hostname.as_str())
                .eq_ignore_ascii_case(&self.value),
            Key::NodeRole => role_name(node.role).eq_ignore_ascii_case(&self.value),
            Key::NodePlatformOs => platform
                .map_or("", |p| p.os.as_str())
                .eq_ignore_ascii_case(&self.value),
            Key::NodePlatformArch => platform
                .map_or("", |p| p.architecture.as_str())
                .eq_ignore_ascii_case(&self.value),
            Key::NodeLabel(name) => node
                .spec
                .as_ref()
                .and_then(|s| s.annotations.as_ref())
                .and_then(|a| a.labels.get(name))
                .is_some_and(|v| *v == self.value),
            Key::EngineLabel(name) => desc
                .and_then(|d| d.engine_labels.get(name))
                .is_some_and(|v| *v == self.value),
        };
        match self.op {
            Op::Eq => equal,
            Op::NotEq => !equal,
        }
    }
}

/// The index of the first constraint `node` does not satisfy, if any.
pub fn first_unsatisfied(constraints: &[Constraint], node: &Node) -> Option<usize> {
    constraints.iter().position(|c| !c.matches(node))
}

fn role_name(role: i32) -> &'static str {
    match NodeRole::try_from(role) {
        Ok(NodeRole::Manager) => "manager",
        _ => "worker",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::fixtures::NodeBuilder;

    #[test]
    fn parses_each_key_with_optional_whitespace() {
        let cases = [
            ("node.id==abc", Key::NodeId, Op::Eq, "abc"),
            (
                "node.hostname != host-1",
                Key::NodeHostname,
                Op::NotEq,
                "host-1",
            ),
            ("NODE.ROLE==Manager", Key::NodeRole, Op::Eq, "Manager"),
            (
                "node.platform.os==linux",
                Key::NodePlatformOs,
                Op::Eq,
                "linux",
            ),
            (
                "node.platform.arch == x86_64",
                Key::NodePlatformArch,
                Op::Eq,
                "x86_64",
            ),
            (
                "node.labels.Zone==eu-west",
                Key::NodeLabel("Zone".into()),
                Op::Eq,
                "eu-west",
            ),
            (
                "  engine.labels.disk  !=  ssd ",
                Key::EngineLabel("disk".into()),
                Op::NotEq,
                "ssd",
            ),
        ];
        for (expr, key, op, value) in cases {
            let c = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
            assert_eq!(
                c,
                Constraint {
                    key,
                    op,
                    value: value.into()
                },
                "{expr}"
            );
        }
    }

    #[test]
    fn displays_canonically() {
        let c = parse(" Node.Labels.zone  ==  eu ").unwrap();
        assert_eq!(c.to_string(), "node.labels.zone==eu");
        let all = parse_all(&["node.role!=worker", "engine.labels.a==b"]).unwrap();
        assert_eq!(all[0].to_string(), "node.role!=worker");
        assert_eq!(all[1].to_string(), "engine.labels.a==b");
    }

    #[test]
    fn rejects_invalid_expressions_with_clear_messages() {
        let cases = [
            (
                "node.foo==x",
                "invalid constraint \"node.foo==x\": unknown key \"node.foo\"; expected node.id, \
                 node.hostname, node.role, node.platform.os, node.platform.arch, \
                 node.labels.<name> or engine.labels.<name>",
            ),
            (
                "node.role=manager",
                "invalid constraint \"node.role=manager\": expected KEY==VALUE or KEY!=VALUE",
            ),
            (
                "node.hostname==",
                "invalid constraint \"node.hostname==\": missing value after ==",
            ),
            (
                "node.labels.==x",
                "invalid constraint \"node.labels.==x\": label name \"\" may only hold letters, \
                 digits and - _ .",
            ),
            (
                "node.labels.a b==x",
                "invalid constraint \"node.labels.a b==x\": label name \"a b\" may only hold \
                 letters, digits and - _ .",
            ),
            (
                "node.id==a==b",
                "invalid constraint \"node.id==a==b\": value \"a==b\" may only hold letters, \
                 digits, spaces and : - _ . * ( ) ? + [ ] \\ ^ $ | /",
            ),
            (
                "node.role==boss",
                "invalid constraint \"node.role==boss\": node.role is manager or worker, not \
                 \"boss\"",
            ),
            (
                "==x",
                "invalid constraint \"==x\": unknown key \"\"; expected node.id, node.hostname, node.role, node.platform.os, node.platform.arch, node.labels.<name> or engine.labels.<name>",
            ),
        ];
        for (expr, message) in cases {
            let err = parse(expr).expect_err(expr);
            assert_eq!(err.to_string(), message, "{expr}");
        }
        assert!(parse_all(&["node.role==manager", "bogus"]).is_err());
    }

    #[test]
    fn matches_identity_role_and_platform_case_insensitively() {
        let n = NodeBuilder::new("n1")
            .hostname("Host-A")
            .manager()
            .platform("linux", "x86_64")
            .build();
        let yes = [
            "node.id==N1",
            "node.hostname==host-a",
            "node.role==MANAGER",
            "node.role!=worker",
            "node.platform.os==Linux",
            "node.platform.arch==x86_64",
            "node.platform.arch!=arm64",
        ];
        for e in yes {
            assert!(parse(e).unwrap().matches(&n), "{e} should match");
        }
        let no = ["node.id!=n1", "node.hostname==host-b", "node.role==worker"];
        for e in no {
            assert!(!parse(e).unwrap().matches(&n), "{e} should not match");
        }
        let worker = NodeBuilder::new("n2").build();
        assert!(parse("node.role==worker").unwrap().matches(&worker));
        // No description at all: the hostname and platform are "".
        assert!(parse("node.hostname!=x").unwrap().matches(&worker));
        assert!(!parse("node.platform.os==linux").unwrap().matches(&worker));
    }

    #[test]
    fn labels_compare_exactly_and_missing_is_not_equal() {
        let n = NodeBuilder::new("n1")
            .label("zone", "eu")
            .engine_label("disk", "ssd")
            .build();
        let check = |e: &str| parse(e).unwrap().matches(&n);
        assert!(check("node.labels.zone==eu"));
        assert!(
            !check("node.labels.zone==EU"),
            "label values are case-sensitive"
        );
        assert!(
            !check("node.labels.Zone==eu"),
            "label names are case-sensitive"
        );
        assert!(check("node.labels.zone!=us"));
        assert!(!check("node.labels.rack==r1"), "missing label never equals");
        assert!(check("node.labels.rack!=r1"), "missing label is not equal");
        assert!(check("engine.labels.disk==ssd"));
        assert!(!check("engine.labels.gpu==yes"));
        assert!(check("engine.labels.gpu!=yes"));
        let all = parse_all(&["node.labels.zone==eu", "engine.labels.disk==hdd"]).unwrap();
        assert_eq!(first_unsatisfied(&all, &n), Some(1));
        assert_eq!(first_unsatisfied(&all[..1], &n), None);
    }
}
