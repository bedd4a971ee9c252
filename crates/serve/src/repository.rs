//! The models served: those named one by one (built-ins, files) and a model directory — one
//! model per `.onnx` / `.tflite` file, its card the `.toml` beside it — which is read again on
//! [`Repository::reload`] (`SIGHUP`): new files are loaded, changed ones (size or time of the
//! model or its card) loaded again and swapped in, removed ones unloaded. A model that fails
//! to load on a reload is logged and the version served before stays.

use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::model::{Served, Source};
use crate::settings::ServingSettings;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;
use tensorcv_imgproc::io::DecodeLimits;

/// A model asked for by name: `face`, `models/x.onnx`, `name=models/x.onnx`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// the name to serve it under (`None`: its own)
    pub name: Option<String>,
    /// where it comes from
    pub source: Source,
}

impl ModelSpec {
    /// `NAME=SPEC` or `SPEC`; SPEC a built-in's name or a path.
    pub fn parse(text: &str) -> ModelSpec {
        match text.split_once('=') {
            Some((name, spec)) if !name.is_empty() && !name.contains(['/', '.']) => ModelSpec {
                name: Some(name.to_string()),
                source: Source::parse(spec),
            },
            _ => ModelSpec {
                name: None,
                source: Source::parse(text),
            },
        }
    }
}

/// What a repository is made of.
#[derive(Clone, Debug, Default)]
pub struct RepositoryOptions {
    /// models named one by one
    pub models: Vec<ModelSpec>,
    /// a model directory, read again on reload
    pub dir: Option<PathBuf>,
    /// serving settings for every model (cards change them)
    pub defaults: ServingSettings,
    /// limits on the images requests send
    pub limits: DecodeLimits,
}

/// What a reload did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    /// models loaded for the first time
    pub added: Vec<String>,
    /// models loaded again (their files changed)
    pub reloaded: Vec<String>,
    /// models no longer served
    pub removed: Vec<String>,
    /// files that failed to load, with why (the old version, if any, stays)
    pub failed: Vec<String>,
}

/// The models being served.
#[derive(Debug)]
pub struct Repository {
    models: RwLock<BTreeMap<String, Arc<Served>>>,
    /// the directory's files and the names they are served under
    from_dir: Mutex<BTreeMap<PathBuf, String>>,
    options: RepositoryOptions,
    metrics: Arc<Metrics>,
    /// one reload at a time
    reloading: Mutex<()>,
}

/// The model files of `dir` (`.onnx`, `.tflite`, not hidden), sorted.
fn scan(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::Load {
        what: format!("the model directory '{}'", dir.display()),
        message: e.to_string(),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            let model = p.extension().is_some_and(|e| {
                e.eq_ignore_ascii_case("onnx") || e.eq_ignore_ascii_case("tflite")
            });
            !hidden && model && p.is_file()
        })
        .collect();
    files.sort();
    Ok(files)
}

impl Repository {
    /// Load every model (an error in any is returned: a server does not start half-loaded).
    pub fn open(options: RepositoryOptions, metrics: Arc<Metrics>) -> Result<Repository> {
        options.defaults.validate("--")?;
        let repo = Repository {
            models: RwLock::new(BTreeMap::new()),
            from_dir: Mutex::new(BTreeMap::new()),
            options,
            metrics,
            reloading: Mutex::new(()),
        };
        let mut loaded: BTreeMap<String, Arc<Served>> = BTreeMap::new();
        let mut add = |served: Served| -> Result<String> {
            let name = served.name.clone();
            if let Some(other) = loaded.get(&name) {
                return Err(Error::Load {
                    what: served.source.describe(),
                    message: format!(
                        "the name '{name}' is taken by {} (rename one: NAME=MODEL)",
                        other.source.describe()
                    ),
                });
            }
            loaded.insert(name.clone(), Arc::new(served));
            Ok(name)
        };
        for spec in &repo.options.models {
            add(repo.load(&spec.source, spec.name.as_deref())?)?;
        }
        if let Some(dir) = &repo.options.dir {
            let mut from_dir = repo.from_dir.lock().unwrap_or_else(|p| p.into_inner());
            for path in scan(dir)? {
                let name = add(repo.load(&Source::File(path.clone()), None)?)?;
                from_dir.insert(path, name);
            }
        }
        if loaded.is_empty() {
            return Err(Error::Load {
                what: "the repository".into(),
                message: "no models to serve (give -m MODEL or --models DIR with model files)"
                    .into(),
            });
        }
        *repo.models.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(repo)
    }

    fn load(&self, source: &Source, name: Option<&str>) -> Result<Served> {
        Served::load(
            source,
            name,
            &self.options.defaults,
            self.options.limits,
            &self.metrics,
        )
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Result<Arc<Served>> {
        let models = self.models.read().unwrap_or_else(|p| p.into_inner());
        models
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownModel {
                name: name.to_string(),
                served: models.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// The model called `name` at `version` (every model is version `1`; none: the latest).
    pub fn get_version(&self, name: &str, version: Option<&str>) -> Result<Arc<Served>> {
        let model = self.get(name)?;
        match version {
            None | Some("") | Some("1") => Ok(model),
            Some(v) => Err(Error::UnknownVersion {
                name: name.to_string(),
                version: v.to_string(),
            }),
        }
    }

    /// Every model, by name.
    pub fn all(&self) -> Vec<Arc<Served>> {
        self.models
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Read the model directory again: load what is new or changed, unload what is gone.
    pub fn reload(&self) -> ReloadReport {
        let _one = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let mut report = ReloadReport::default();
        let Some(dir) = &self.options.dir else {
            return report;
        };
        let files = match scan(dir) {
            Ok(f) => f,
            Err(e) => {
                report.failed.push(e.to_string());
                return report;
            }
        };
        let mut from_dir = self.from_dir.lock().unwrap_or_else(|p| p.into_inner());
        // what is gone
        let gone: Vec<PathBuf> = from_dir
            .keys()
            .filter(|p| !files.contains(p))
            .cloned()
            .collect();
        for path in gone {
            if let Some(name) = from_dir.remove(&path) {
                let removed = self
                    .models
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&name);
                if let Some(m) = removed {
                    m.close();
                    report.removed.push(name);
                }
            }
        }
        for path in files {
            let source = Source::File(path.clone());
            let current = from_dir.get(&path).and_then(|name| self.get(name).ok());
            if let Some(m) = &current {
                if m.fingerprint.is_some() && m.fingerprint == source.fingerprint() {
                    continue;
                }
            }
            let served = match self.load(&source, None) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "reload: keeping what was served");
                    report.failed.push(e.to_string());
                    continue;
                }
            };
            let name = served.name.clone();
            let mut models = self.models.write().unwrap_or_else(|p| p.into_inner());
            // a name another model holds stays with it
            if let Some(other) = models.get(&name) {
                if current.as_ref().is_none_or(|c| !Arc::ptr_eq(c, other)) {
                    report.failed.push(format!(
                        "{}: the name '{name}' is taken by {}",
                        source.describe(),
                        other.source.describe()
                    ));
                    continue;
                }
            }
            // a renamed card: the old name goes
            if let Some(old) = &current {
                if old.name != name {
                    models.remove(&old.name);
                    report.removed.push(old.name.clone());
                }
                old.close();
            }
            models.insert(name.clone(), Arc::new(served));
            drop(models);
            from_dir.insert(path, name.clone());
            match current {
                Some(_) => report.reloaded.push(name),
                None => report.added.push(name),
            }
        }
        report
    }

    /// Stop every model taking requests; those waiting are answered.
    pub fn close(&self) {
        for m in self.all() {
            m.close();
        }
    }

    /// Wait for every model's instances to end (after [`Repository::close`]), at most until
    /// `deadline`; whether they all did.
    pub fn join(&self, deadline: Instant) -> bool {
        self.all().iter().all(|m| m.join(deadline))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_name_models_or_take_their_names() {
        assert_eq!(
            ModelSpec::parse("face"),
            ModelSpec {
                name: None,
                source: Source::Builtin("face")
            }
        );
        assert_eq!(
            ModelSpec::parse("cam=models/x.onnx"),
            ModelSpec {
                name: Some("cam".into()),
                source: Source::File("models/x.onnx".into())
            }
        );
        // a path holding '=' is a path
        assert_eq!(
            ModelSpec::parse("dir/a=b.onnx").source,
            Source::File("dir/a=b.onnx".into())
        );
    }
}
