//! Statement classification for `actor_sqlite_statement_duration_seconds{kind}`.

use actor_metrics::labels::StatementKind;

/// The kind of a statement, from its first keyword (comments and whitespace
/// skipped). `WITH` counts as a read; anything unknown (`PRAGMA`, `EXPLAIN`,
/// `VALUES`) too.
pub(crate) fn classify(sql: &str) -> StatementKind {
    let word = first_keyword(sql);
    let is = |k: &str| word.eq_ignore_ascii_case(k);
    if ["INSERT", "UPDATE", "DELETE", "REPLACE"]
        .iter()
        .any(|k| is(k))
    {
        StatementKind::Write
    } else if [
        "CREATE", "DROP", "ALTER", "REINDEX", "VACUUM", "ANALYZE", "ATTACH", "DETACH",
    ]
    .iter()
    .any(|k| is(k))
    {
        StatementKind::Ddl
    } else if ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"]
        .iter()
        .any(|k| is(k))
    {
        StatementKind::Transaction
    } else {
        StatementKind::Read
    }
}

fn first_keyword(sql: &str) -> &str {
    let mut rest = sql;
    loop {
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.find('\n').map_or("", |i| &r[i + 1..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]);
        } else {
            break;
        }
    }
    let end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    &rest[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statements() {
        for (sql, kind) in [
            ("SELECT 1", StatementKind::Read),
            ("  select * from t", StatementKind::Read),
            ("WITH x AS (SELECT 1) SELECT * FROM x", StatementKind::Read),
            ("PRAGMA user_version", StatementKind::Read),
            ("INSERT INTO t VALUES (1)", StatementKind::Write),
            ("-- note\n update t set a = 1", StatementKind::Write),
            ("/* c */ DELETE FROM t", StatementKind::Write),
            ("REPLACE INTO t VALUES (1)", StatementKind::Write),
            ("CREATE TABLE t (a)", StatementKind::Ddl),
            ("drop table t", StatementKind::Ddl),
            ("BEGIN IMMEDIATE", StatementKind::Transaction),
            ("COMMIT", StatementKind::Transaction),
            ("rollback", StatementKind::Transaction),
            ("SAVEPOINT a", StatementKind::Transaction),
            ("", StatementKind::Read),
            ("/* unterminated", StatementKind::Read),
        ] {
            assert_eq!(classify(sql), kind, "{sql:?}");
        }
    }
}
