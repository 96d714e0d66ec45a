//! `edgewhisk admin`: subjects, namespaces, keys and per-namespace limits, like OpenWhisk's
//! `wskadmin`, working directly on the data directory's SQLite store, or with `--postgres` on
//! a cluster's database (whose controllers then drop their cached keys and limits at once).
//!
//! It may run while `edgewhisk serve` runs on the same data directory (SQLite's WAL lets both
//! write). The server caches identities and namespace limits for at most 5 s, so a created key
//! works at once, and a deleted or regenerated key stops working (and new limits apply) within
//! 5 s of the command returning.
//!
//! Keys are stored hashed, so a key is printed only when it is created or regenerated; `user
//! get` shows the key's UUID only.
//!
//! `backup` copies the store while a server serves it; `restore` replaces it with a backup
//! and refuses while a server runs on the data directory (`docs/upgrades.md`).

use crate::config::{Config, env};
use crate::serve::lock;
use anyhow::{Context, bail};
use edgewhisk_entity::Identity;
use edgewhisk_entity::identity::{KEY_LENGTH, NamespaceLimits, generate_key};
use edgewhisk_entity::names::validate_name;
use edgewhisk_store::sqlite::backup;
use edgewhisk_store::sqlite::schema::SCHEMA_VERSION;
use edgewhisk_store::{EntityStore, PostgresStore, SqliteStore};
use std::path::{Path, PathBuf};

/// Shortest subject name OpenWhisk accepts (`Subject.MIN_LENGTH`).
const MIN_SUBJECT_LENGTH: usize = 5;

/// `edgewhisk admin …`.
#[derive(Debug, clap::Subcommand)]
pub enum AdminCommand {
    /// Create, delete, show, list and regenerate subjects' keys.
    #[command(subcommand)]
    User(UserCommand),
    /// Set, show and delete per-namespace throttle limits.
    #[command(subcommand)]
    Limits(LimitsCommand),
    /// Copy the store to FILE, also while the server serves it (SQLite's online backup).
    ///
    /// FILE is one self-contained SQLite file, checked before it replaces FILE.
    Backup {
        /// The backup file to write (replaced if it exists).
        file: PathBuf,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace the store with the backup FILE; stop the server first.
    ///
    /// FILE is checked first; restore refuses while a server runs on the data directory.
    Restore {
        /// The backup file to restore.
        file: PathBuf,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Where the store is: the same flags, environment and defaults as `edgewhisk serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// Data directory holding `edgewhisk.db` [default: user data dir].
    #[arg(long, env = env::DATA_DIR)]
    data_dir: Option<PathBuf>,
    /// TOML configuration file (its `server.data_dir`, `cluster.postgres` and `[store]`
    /// apply).
    #[arg(long, env = env::CONFIG)]
    config: Option<PathBuf>,
    /// A cluster's PostgreSQL URL: work on that database instead of a data directory.
    #[arg(long, env = env::POSTGRES)]
    postgres: Option<String>,
}

/// A subject and, optionally, one of its namespaces.
#[derive(Debug, Clone, clap::Args)]
pub struct SubjectArgs {
    /// The subject (user) name.
    subject: String,
    /// The namespace [default: the subject's name, or all of its namespaces for `delete`
    /// and `get`].
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
}

/// `edgewhisk admin user …`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a subject's key for a namespace; prints `uuid:key`.
    Create {
        /// Whose key.
        #[command(flatten)]
        who: SubjectArgs,
        /// Use this `uuid:key` instead of a generated one.
        #[arg(long, short = 'u')]
        auth: Option<String>,
    },
    /// Delete a subject's key in one namespace, or all of its keys.
    Delete {
        /// Whose key.
        #[command(flatten)]
        who: SubjectArgs,
    },
    /// Show a subject's namespaces and key UUIDs (keys are shown only at creation).
    Get {
        /// Whose key.
        #[command(flatten)]
        who: SubjectArgs,
    },
    /// List the subjects of a namespace.
    List {
        /// The namespace.
        namespace: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Give a subject a new `uuid:key` for a namespace (printed); the old one stops working
    /// within 5 s.
    Regenerate {
        /// Whose key.
        #[command(flatten)]
        who: SubjectArgs,
    },
}

/// `edgewhisk admin limits …`.
#[derive(Debug, clap::Subcommand)]
pub enum LimitsCommand {
    /// Set a namespace's limits (values above the system's are capped by the server).
    Set {
        /// The namespace.
        namespace: String,
        /// Invocations per minute.
        #[arg(long = "invocationsPerMinute")]
        invocations_per_minute: Option<u64>,
        /// Activations in flight at once.
        #[arg(long = "concurrentInvocations")]
        concurrent_invocations: Option<u64>,
        /// Trigger fires per minute.
        #[arg(long = "firesPerMinute")]
        fires_per_minute: Option<u64>,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show a namespace's limits as JSON.
    Get {
        /// The namespace.
        namespace: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove a namespace's limits: the system limits apply again.
    Delete {
        /// The namespace.
        namespace: String,
        /// Where the store is.
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// Runs one admin command; returns the exit code.
pub async fn run(cmd: AdminCommand) -> anyhow::Result<i32> {
    match cmd {
        AdminCommand::User(cmd) => user(cmd).await,
        AdminCommand::Limits(cmd) => limits(cmd).await,
        AdminCommand::Backup { file, store } => backup(file, &store).await,
        AdminCommand::Restore { file, store } => restore(file, &store).await,
    }
}

/// The store an admin command works on: a data directory's, or a cluster's.
enum AdminStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// Where an admin command's store is: the configuration, and a cluster's PostgreSQL URL or
/// `None` for the data directory's SQLite store.
fn locate(args: &StoreArgs) -> anyhow::Result<(Config, Option<String>)> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(dir) = &args.data_dir {
        config.server.data_dir.clone_from(dir);
    }
    if let Some(url) = &args.postgres {
        config.cluster.postgres.clone_from(url);
    }
    config.store.validate().context("invalid [store] section")?;
    let postgres = Some(config.cluster.postgres.clone()).filter(|url| !url.is_empty());
    Ok((config, postgres))
}

async fn open(args: &StoreArgs) -> anyhow::Result<AdminStore> {
    let (config, postgres) = locate(args)?;
    if let Some(url) = postgres {
        let store = PostgresStore::connect(&url, &config.store)
            .await
            .context("connecting to the cluster's PostgreSQL")?;
        return Ok(AdminStore::Postgres(store));
    }
    let path = config.db_path();
    let store = SqliteStore::open(&path, &config.store)
        .with_context(|| format!("opening store {}", path.display()))?;
    Ok(AdminStore::Sqlite(store))
}

/// The data directory and its store file for `backup` and `restore`, which a cluster's
/// PostgreSQL does not have.
fn sqlite_store(args: &StoreArgs, command: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (config, postgres) = locate(args)?;
    if postgres.is_some() {
        bail!(
            "'admin {command}' works on a data directory's SQLite store; a cluster's store is \
             PostgreSQL: back it up and restore it with pg_dump and pg_restore (docs/upgrades.md)"
        );
    }
    Ok((config.data_dir(), config.db_path()))
}

async fn backup(file: PathBuf, args: &StoreArgs) -> anyhow::Result<i32> {
    let (_, db) = sqlite_store(args, "backup")?;
    if !db.exists() {
        bail!(
            "there is no store to back up: {} does not exist",
            db.display()
        );
    }
    let started = std::time::Instant::now();
    let summary = {
        let (db, file) = (db.clone(), file.clone());
        tokio::task::spawn_blocking(move || backup::backup(&db, &file)).await?
    }
    .with_context(|| format!("backing up {} to {}", db.display(), file.display()))?;
    println!(
        "backed up {} to {} in {:.1} s: {summary}",
        db.display(),
        file.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(0)
}

async fn restore(file: PathBuf, args: &StoreArgs) -> anyhow::Result<i32> {
    let (data_dir, db) = sqlite_store(args, "restore")?;
    let checked = file.clone();
    tokio::task::spawn_blocking(move || backup::inspect(&checked))
        .await?
        .with_context(|| format!("checking the backup {}", file.display()))?;
    create_private_dir(&data_dir)?;
    let Some(_lock) = lock::try_lock(&data_dir)? else {
        bail!(
            "a server is running on data directory {} (it holds {}): stop it first; restoring \
             under a running server would leave its caches and open store on the old contents",
            data_dir.display(),
            lock::lock_path(&data_dir).display()
        );
    };
    let summary = {
        let (db, file) = (db.clone(), file.clone());
        tokio::task::spawn_blocking(move || backup::restore(&file, &db)).await?
    }
    .with_context(|| format!("restoring {} into {}", file.display(), db.display()))?;
    set_private(&db, 0o600)?;
    println!(
        "restored {} into {}: {summary}",
        file.display(),
        db.display()
    );
    if summary.schema_version < SCHEMA_VERSION {
        println!("the server migrates it to schema version {SCHEMA_VERSION} when it starts");
    }
    Ok(0)
}

/// Creates `dir` readable by its owner only if it does not exist (as `edgewhisk serve`
/// does: the store holds every namespace's key).
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    set_private(dir, 0o700)
}

fn set_private(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting mode {mode:o} on {}", path.display()))
}

/// Runs `f` on the store, then closes it whatever `f` returned.
async fn with_store<T>(
    args: &StoreArgs,
    f: impl AsyncFnOnce(&dyn EntityStore) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let result;
    match open(args).await? {
        AdminStore::Sqlite(store) => {
            result = f(&store).await;
            store.close().await.context("closing store")?;
        }
        AdminStore::Postgres(store) => {
            result = f(&store).await;
            store.close().await.context("closing store")?;
        }
    }
    result
}

/// Splits and checks a `uuid:key` given on the command line.
fn parse_auth(auth: &str) -> anyhow::Result<(String, String)> {
    let (uuid, key) = auth.split_once(':').context("--auth must be UUID:KEY")?;
    uuid::Uuid::parse_str(uuid).with_context(|| format!("{uuid} is not a UUID"))?;
    if key.chars().count() != KEY_LENGTH {
        bail!("the key must be {KEY_LENGTH} characters long");
    }
    Ok((uuid.to_owned(), key.to_owned()))
}

/// Refuses a subject or namespace that OpenWhisk would not accept: a namespace is one entity
/// name as every API path takes it (`[\w@ .&-]`, starting with a word character, at most 256
/// characters; so no `/`), other than `_`, which stands for the caller's own; a subject has at
/// least 5 characters (OpenWhisk `Subject`) and no control character.
fn check_names(subject: &str, namespace: &str) -> anyhow::Result<()> {
    validate_name("namespace", namespace)
        .with_context(|| format!("'{namespace}' is not a valid namespace name"))?;
    if namespace == "_" {
        bail!("'_' names the caller's own namespace in every path and cannot be a namespace");
    }
    if subject.chars().count() < MIN_SUBJECT_LENGTH || subject.chars().any(char::is_control) {
        bail!(
            "'{subject}' is not a valid subject: at least {MIN_SUBJECT_LENGTH} characters, no \
             control characters"
        );
    }
    Ok(())
}

/// The identities of `who.subject`, restricted to `who.namespace` when given.
async fn identities(store: &dyn EntityStore, who: &SubjectArgs) -> anyhow::Result<Vec<Identity>> {
    let mut ids = store.identities_of(&who.subject).await?;
    if let Some(ns) = &who.namespace {
        ids.retain(|i| &i.namespace == ns);
    }
    if ids.is_empty() {
        match &who.namespace {
            Some(ns) => bail!("subject '{}' has no key in namespace '{ns}'", who.subject),
            None => bail!("subject '{}' does not exist", who.subject),
        }
    }
    Ok(ids)
}

async fn user(cmd: UserCommand) -> anyhow::Result<i32> {
    match cmd {
        UserCommand::Create { who, auth } => {
            let namespace = who.namespace.clone().unwrap_or_else(|| who.subject.clone());
            check_names(&who.subject, &namespace)?;
            let (uuid, key) = match auth.as_deref().map(parse_auth).transpose()? {
                Some(pair) => pair,
                None => (uuid::Uuid::new_v4().to_string(), generate_key()),
            };
            let identity = Identity {
                subject: who.subject.clone(),
                namespace,
                uuid,
                key,
            };
            let created = identity.clone();
            with_store(&who.store, async move |store| {
                let existing = store.identities_of(&identity.subject).await?;
                if existing.iter().any(|i| i.namespace == identity.namespace) {
                    bail!(
                        "subject '{}' already has a key in namespace '{}'",
                        identity.subject,
                        identity.namespace
                    );
                }
                if store.identity(&identity.uuid).await?.is_some() {
                    bail!("the UUID {} is already in use", identity.uuid);
                }
                store.put_identity(identity).await?;
                Ok(())
            })
            .await?;
            println!("{}", created.auth_string());
        }
        UserCommand::Delete { who } => {
            let store_args = who.store.clone();
            let deleted = with_store(&store_args, async move |store| {
                let ids = identities(store, &who).await?;
                for id in &ids {
                    store.delete_identity(&id.uuid).await?;
                }
                Ok(ids)
            })
            .await?;
            for id in deleted {
                println!(
                    "deleted subject '{}' in namespace '{}'",
                    id.subject, id.namespace
                );
            }
        }
        UserCommand::Get { who } => {
            let store_args = who.store.clone();
            let ids = with_store(&store_args, async move |store| {
                identities(store, &who).await
            })
            .await?;
            for id in ids {
                println!("{}\t{}", id.namespace, id.uuid);
            }
            eprintln!(
                "keys are stored hashed: a key is shown only by 'user create' and 'user regenerate'"
            );
        }
        UserCommand::List { namespace, store } => {
            let ids = with_store(&store, async move |store| {
                Ok(store.identities_in(&namespace).await?)
            })
            .await?;
            for id in ids {
                println!("{}\t{}", id.subject, id.uuid);
            }
        }
        UserCommand::Regenerate { who } => {
            let store_args = who.store.clone();
            let fresh = with_store(&store_args, async move |store| {
                let ids = identities(store, &who).await?;
                let [old] = ids.as_slice() else {
                    bail!(
                        "subject '{}' has keys in several namespaces; choose one with --namespace",
                        who.subject
                    );
                };
                // A new UUID too: the server has not cached it, so the new key works at once,
                // while the old UUID's cached entry expires within the cache bound.
                let fresh = Identity::generate(&old.subject, &old.namespace);
                store.put_identity(fresh.clone()).await?;
                store.delete_identity(&old.uuid).await?;
                Ok(fresh)
            })
            .await?;
            println!("{}", fresh.auth_string());
        }
    }
    Ok(0)
}

async fn limits(cmd: LimitsCommand) -> anyhow::Result<i32> {
    match cmd {
        LimitsCommand::Set {
            namespace,
            invocations_per_minute,
            concurrent_invocations,
            fires_per_minute,
            store,
        } => {
            validate_name("namespace", &namespace)
                .with_context(|| format!("'{namespace}' is not a valid namespace name"))?;
            let limits = NamespaceLimits {
                invocations_per_minute,
                concurrent_invocations,
                fires_per_minute,
            };
            if limits.is_empty() {
                bail!(
                    "give at least one of --invocationsPerMinute, --concurrentInvocations, \
                     --firesPerMinute"
                );
            }
            let ns = namespace.clone();
            with_store(&store, async move |store| {
                Ok(store.put_namespace_limits(&ns, Some(limits)).await?)
            })
            .await?;
            println!("limits set for namespace '{namespace}'");
        }
        LimitsCommand::Get { namespace, store } => {
            let ns = namespace.clone();
            let limits = with_store(&store, async move |store| {
                Ok(store.namespace_limits(&ns).await?)
            })
            .await?;
            match limits {
                Some(l) => println!("{}", serde_json::to_string(&l)?),
                None => {
                    println!("no limits set for namespace '{namespace}': the system limits apply")
                }
            }
        }
        LimitsCommand::Delete { namespace, store } => {
            let ns = namespace.clone();
            with_store(&store, async move |store| {
                Ok(store.put_namespace_limits(&ns, None).await?)
            })
            .await?;
            println!("limits deleted for namespace '{namespace}'");
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_entity_names_and_subjects_have_five_characters() {
        assert!(check_names("alice", "alice").is_ok());
        assert!(check_names("alice", "alice@example.com").is_ok());
        assert!(check_names("whisk.system", "whisk.system").is_ok());
        for (subject, namespace) in [
            ("bobby", "bob/pkg"),
            ("bobby", ""),
            ("bobby", "_"),
            ("bobby", "-bob"),
            ("bobby", "bob "),
            ("bob", "bobby"),
            ("bob\u{1}by", "bobby"),
        ] {
            assert!(
                check_names(subject, namespace).is_err(),
                "{subject:?} {namespace:?}"
            );
        }
    }

    #[test]
    fn parse_auth_accepts_a_uuid_and_a_64_character_key_only() {
        let good = edgewhisk_entity::identity::GUEST_AUTH;
        let (uuid, key) = parse_auth(good).unwrap();
        assert_eq!(format!("{uuid}:{key}"), good);
        assert!(parse_auth("not-a-uuid:abc").is_err());
        assert!(parse_auth("23bc46b1-71f6-4ed5-8c54-816aa4f8c502:short").is_err());
        assert!(parse_auth("no-colon").is_err());
    }
}
