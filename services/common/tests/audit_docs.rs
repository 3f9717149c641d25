//! docs/src/audit.md lists every action the trails record, each with its trail, and
//! nothing else: a new action does not land without its line in the docs.

use pulsetrack_common::audit::Action;

#[test]
fn the_docs_list_every_action_with_its_trail() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/src/audit.md");
    let docs = std::fs::read_to_string(path).expect("docs/src/audit.md");
    let rows: Vec<(String, String)> = docs
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let trail = cells.get(2)?;
            name.chars().all(|c| c.is_ascii_uppercase() || c == '_').then(|| (name.to_string(), trail.to_string()))
        })
        .collect();
    for action in Action::ALL {
        let trail = if action.trail() == "*" { "every trail" } else { action.trail() };
        assert!(
            rows.iter().any(|(name, t)| name == action.as_str() && t == trail),
            "docs/src/audit.md has no row `| `{action}` | {trail} |`"
        );
    }
    let known: Vec<&str> = Action::ALL.iter().map(|a| a.as_str()).collect();
    for (name, _) in &rows {
        assert!(known.contains(&name.as_str()), "docs/src/audit.md lists {name}, which no trail records");
    }
}
