//! The database's own secrets (see `Store::ensure_secret`).

use deadpool_postgres::GenericClient;

/// Creates the secret if no replica has yet, then reads whichever one won.
pub(super) async fn ensure_secret_in(
    client: &impl GenericClient,
    name: &str,
) -> Result<Vec<u8>, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO server_secrets (name, secret, created_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
            &[&name, &crate::new_database_secret(), &crate::now_micros()],
        )
        .await?;
    client.query_one("SELECT secret FROM server_secrets WHERE name = $1", &[&name]).await?.try_get(0)
}
