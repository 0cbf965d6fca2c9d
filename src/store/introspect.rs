//! The live shape of a schema as comparable facts (columns with type and nullability, indexes,
//! constraints), for `migrate verify`. Schema names are stripped so two schemas compare.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::migrate::MigrateError;

const FACTS: &str = "
    SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
           || CASE WHEN is_nullable = 'YES' THEN ' null' ELSE ' not null' END
      FROM information_schema.columns WHERE table_schema = $1
    UNION ALL
    SELECT 'index ' || tablename || ': ' || replace(indexdef, $1 || '.', '')
      FROM pg_indexes WHERE schemaname = $1
    UNION ALL
    SELECT 'constraint ' || cl.relname || '.' || c.conname || ': '
           || replace(pg_get_constraintdef(c.oid), $1 || '.', '')
      FROM pg_constraint c
      JOIN pg_class cl ON cl.oid = c.conrelid
      JOIN pg_namespace n ON n.oid = cl.relnamespace
     WHERE n.nspname = $1";

pub async fn schema(client: &Client, schema: &str) -> Result<BTreeSet<String>, MigrateError> {
    let rows = client.query(FACTS, &[&schema]).await?;
    Ok(rows.iter().map(|r| r.get::<_, String>(0)).collect())
}
