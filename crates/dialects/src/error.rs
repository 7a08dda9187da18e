use std::fmt;

/// Why a payload could not be decoded, and where: `path` is a JSON path such as
/// `data.event_leg.state` (empty for the payload as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DecodeError {
    pub path: String,
    pub message: String,
    /// True when the bytes are not JSON at all (a syntax error rather than a wrong field).
    pub syntax: bool,
    /// True when the only fault is a value outside the vendor's enumeration as we know it (a
    /// state or event name the vendor added since): the event is kept as not understood
    /// rather than refused.
    pub unknown_value: bool,
}

impl DecodeError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        DecodeError {
            path: path.into(),
            message: message.into(),
            syntax: false,
            unknown_value: false,
        }
    }

    /// A value outside the enumeration the decoder knows, at `path`.
    pub fn unknown_value(path: impl Into<String>, message: impl Into<String>) -> Self {
        DecodeError {
            unknown_value: true,
            ..DecodeError::new(path, message)
        }
    }

    pub fn syntax(path: impl Into<String>, message: impl Into<String>) -> Self {
        DecodeError {
            syntax: true,
            ..DecodeError::new(path, message)
        }
    }

    /// Places the error inside a larger document: `data` + `event_leg.state`.
    pub fn within(mut self, prefix: &str) -> Self {
        self.path = join_path(prefix, &self.path);
        self
    }

    /// Turns a serde error that carries its path into a decode error under `prefix`.
    pub fn from_serde(prefix: &str, err: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let path = err.path().to_string();
        // Where serde lost track (a syntax error between fields) it writes `?`: the path says
        // as far as is known, never a `?`.
        let path = path
            .split('.')
            .take_while(|segment| !segment.is_empty() && !segment.starts_with('?'))
            .collect::<Vec<_>>()
            .join(".");
        let inner = err.into_inner();
        let syntax = inner.is_syntax() || inner.is_eof();
        let mut message = clean_serde_message(&inner);
        let mut path = join_path(prefix, &path);
        // A missing field is reported at its parent; name the field itself.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            path = join_path(&path, field);
            message = "missing: this field is required".to_string();
        }
        if message.contains("untagged enum Text")
            || message.contains("expected a string or a number")
        {
            message = "expected a string or a number".to_string();
        }
        DecodeError {
            path,
            unknown_value: message.starts_with("unknown variant"),
            message,
            syntax,
        }
    }
}

/// serde's messages end with " at line 1 column 42", which means nothing to a sender of one
/// element of a batch; the path says where.
fn clean_serde_message(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(at) if !err.is_syntax() && !err.is_eof() => text[..at].to_string(),
        _ => text,
    }
}

pub(crate) fn join_path(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_syntax_error_names_as_much_of_the_path_as_is_known_and_never_a_question_mark() {
        let ctx = crate::DecodeContext::at(jiff::Timestamp::now());
        for (body, path) in [
            (r#"{"uuid": "#, "uuid"),
            (
                r#"{"uuid":"x","data_type":"call","data":{"uuid":"c","event_leg":{"state":"new","from":{"type":"did","id":"+1"} "x":1}}}"#,
                "data.event_leg",
            ),
            (r#"{"uuid":"x" "data":1}"#, ""),
        ] {
            let e = crate::decode(switchboard_model::Dialect::Phonecom, body, &ctx).unwrap_err();
            assert_eq!(e.path, path, "{body}: {e}");
            assert!(e.syntax, "{body}");
        }
    }
}
