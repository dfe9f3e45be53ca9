//! Named pipelines: the [`Registry`] that lets a worker process rebuild
//! the coordinator's pipeline from a name and serialized parameters, the
//! typed [`Key`] a registration returns, and the [`JobSpec`] that crosses
//! the wire.

use super::{bincode_config, Pipeline};
use crate::error::{Error, RunError};
use crate::stage::StageError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

/// A pipeline to run, named by its registry name plus serialized parameters.
/// This is what crosses the wire to worker processes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobSpec {
    /// The registered pipeline name.
    pub pipeline: String,
    /// The parameters, bincode-encoded.
    pub params: Vec<u8>,
}

impl JobSpec {
    /// A job for pipeline `name` with typed parameters.
    pub fn new<P: Serialize>(name: impl Into<String>, params: &P) -> Result<Self, Error> {
        let params = bincode::serde::encode_to_vec(params, bincode_config())
            .map_err(|e| RunError::Build(format!("cannot encode parameters: {e}")))?;
        Ok(JobSpec {
            pipeline: name.into(),
            params,
        })
    }
}

/// The typed name of a registered pipeline: its parameters `P` and its
/// output `O` (from [`Registry::register`]), so that a run cannot name a
/// pipeline that is not there or pass it the wrong parameters.
pub struct Key<P, O> {
    name: String,
    _types: PhantomData<fn(P) -> O>,
}

impl<P, O> Clone for Key<P, O> {
    fn clone(&self) -> Self {
        Key {
            name: self.name.clone(),
            _types: PhantomData,
        }
    }
}

impl<P, O> std::fmt::Debug for Key<P, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({:?})", self.name)
    }
}

impl<P: Serialize, O> Key<P, O> {
    /// The registered name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The job that runs this pipeline with `params` (what workers receive).
    pub fn job(&self, params: &P) -> Result<JobSpec, Error> {
        JobSpec::new(self.name.clone(), params)
    }
}

type BuildFn = dyn Fn(&[u8]) -> Result<Pipeline, RunError> + Send + Sync;

/// Named pipelines that this program knows how to build.
///
/// The coordinator and every worker must register the same names: a worker
/// receives only the name and the parameters, and rebuilds the pipeline.
#[derive(Clone, Default)]
pub struct Registry {
    entries: BTreeMap<String, Arc<BuildFn>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `build` under `name`; its parameters are decoded from the
    /// job. The key it returns runs the pipeline with typed parameters and
    /// gives back its typed output ([`Registry::run`]).
    pub fn register<P, O, F>(&mut self, name: impl Into<String>, build: F) -> Key<P, O>
    where
        P: DeserializeOwned + 'static,
        O: Send + 'static,
        F: Fn(P) -> Result<Pipeline<O>, StageError> + Send + Sync + 'static,
    {
        let name = name.into();
        let label = name.clone();
        let key_name = name.clone();
        self.entries.insert(
            name,
            Arc::new(move |bytes: &[u8]| {
                // Bytes from the coordinator: bounded decoding (see `protocol`).
                let params: P =
                    crate::protocol::decode_whole(bytes, "parameters").map_err(|e| {
                        RunError::Build(format!("pipeline '{label}': bad parameters: {e}"))
                    })?;
                build(params)
                    .map(Pipeline::erase)
                    .map_err(|e| RunError::Build(format!("pipeline '{label}': {e}")))
            }),
        );
        Key {
            name: key_name,
            _types: PhantomData,
        }
    }

    /// Builds the pipeline a job names.
    pub fn build(&self, job: &JobSpec) -> Result<Pipeline, Error> {
        let build = self
            .entries
            .get(&job.pipeline)
            .ok_or_else(|| RunError::UnknownPipeline(job.pipeline.clone()))?;
        Ok(build(&job.params)?)
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }
}
