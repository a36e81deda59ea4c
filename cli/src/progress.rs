//! Progress bars of the long-running commands (`import`, `load`): on stderr, drawn only when
//! it is a terminal, and hidden with `--json` or `--quiet`.

use indicatif::{ProgressDrawTarget, ProgressStyle};

/// Where progress is drawn: stderr (only when it is a terminal), or nowhere when `hidden`.
pub fn target(hidden: bool) -> ProgressDrawTarget {
    if hidden {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    }
}

/// The bar style of `template`, filled with `=> `.
pub fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("valid template")
        .progress_chars("=> ")
}
