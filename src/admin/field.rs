//! The error of a rejected value, naming its field (the CLI turns fields into flags, the API
//! into problem JSON).

/// A rejected value and the field it came in.
#[derive(Debug)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

pub fn field(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError { field, message: message.into() }
}
