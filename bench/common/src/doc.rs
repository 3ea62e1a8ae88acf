//! A benchmark's section of docs/benchmarks.md: each run replaces its whole section.

/// Prints a benchmark's section and, with `doc`, puts it into that markdown file.
pub fn publish(
    generated: &str,
    heading: &str,
    doc: Option<&std::path::Path>,
) -> std::io::Result<()> {
    print!("{generated}");
    if let Some(doc) = doc {
        write_section(doc, heading, generated)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", doc.display())))?;
        eprintln!("wrote {}", doc.display());
    }
    Ok(())
}

/// Puts `generated` into the markdown file `doc` as its section `heading` (see [`splice`]).
pub fn write_section(doc: &std::path::Path, heading: &str, generated: &str) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(doc) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    std::fs::write(doc, splice(&text, heading, generated))
}

/// Replaces the section `heading` (a `## ` line, up to the next `## ` heading or the end) with
/// `generated`, or appends `generated` at the end when the doc has no such section.
pub fn splice(doc: &str, heading: &str, generated: &str) -> String {
    let generated = generated.trim_end();
    let marker = format!("\n{heading}\n");
    let start = if doc.starts_with(&marker[1..]) {
        Some(0)
    } else {
        doc.find(&marker).map(|i| i + 1)
    };
    match start {
        Some(at) => {
            let body = at + heading.len() + 1;
            let end = doc[body..].find("\n## ").map(|i| body + i + 1);
            match end {
                Some(end) => format!("{}{generated}\n\n{}", &doc[..at], &doc[end..]),
                None => format!("{}{generated}\n", &doc[..at]),
            }
        }
        None => format!("{}\n\n{generated}\n", doc.trim_end()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADING: &str = "## Allocation webhook";

    #[test]
    fn splice_appends_then_replaces_the_whole_section() {
        let doc = "# Benchmarks\n\n## Allocator\n\ntext\n";
        let once = splice(doc, HEADING, "## Allocation webhook\n\nrun 1\n");
        assert_eq!(
            once,
            "# Benchmarks\n\n## Allocator\n\ntext\n\n## Allocation webhook\n\nrun 1\n"
        );
        let twice = splice(&once, HEADING, "## Allocation webhook\n\nrun 2\n");
        assert!(twice.contains("run 2") && !twice.contains("run 1"));
        assert!(twice.starts_with(doc));
    }

    #[test]
    fn splice_keeps_the_sections_after() {
        let doc = "# B\n\n## Allocation webhook\n\nold\n\n## Later\n\nmore\n";
        let out = splice(doc, HEADING, "## Allocation webhook\n\nnew\n");
        assert_eq!(
            out,
            "# B\n\n## Allocation webhook\n\nnew\n\n## Later\n\nmore\n"
        );
    }
}
