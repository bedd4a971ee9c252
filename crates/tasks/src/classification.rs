//! Classification: class scores → the top classes, with labels.

use crate::error::{settings, Error, Result};
use serde::Deserialize;
use tensorcv_infer::ndarray::ArrayViewD;
use tensorcv_infer::{ModelCard, Outputs};

/// What the model's scores are before they become probabilities.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// already probabilities (the model ends with its softmax)
    #[default]
    None,
    /// logits of mutually exclusive classes
    Softmax,
    /// independent logits (multi-label)
    Sigmoid,
}

/// `[classification]` of the model card; every key is optional.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClassifySettings {
    /// the output holding the scores (default: the first)
    pub output: Option<String>,
    /// how scores become probabilities
    pub activation: Activation,
    /// how many classes to report
    pub top_k: usize,
    /// drop classes scoring below this
    pub score_threshold: f32,
    /// report only these labels (MediaPipe's `category_allowlist`)
    pub allow: Vec<String>,
    /// never report these labels (`category_denylist`)
    pub deny: Vec<String>,
}

impl Default for ClassifySettings {
    fn default() -> Self {
        ClassifySettings {
            output: None,
            activation: Activation::None,
            top_k: 5,
            score_threshold: 0.0,
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

impl ClassifySettings {
    /// The card's `[classification]` table (defaults where it is silent), checked.
    pub fn from_card(card: &ModelCard) -> Result<Self> {
        let s: Self = settings("classification", card.classification.as_ref())?;
        s.validate()?;
        Ok(s)
    }

    /// `top_k` at least 1, a finite `score_threshold` (NaN would silently drop every class).
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| {
            Err(Error::Card {
                section: "classification",
                message,
            })
        };
        if self.top_k == 0 {
            return bad("top_k must be at least 1".into());
        }
        if !self.score_threshold.is_finite() {
            return bad(format!(
                "score_threshold = {} must be a finite number",
                self.score_threshold
            ));
        }
        Ok(())
    }
}

/// One reported class.
#[derive(Clone, Debug, PartialEq)]
pub struct Class {
    /// index in the model's output
    pub index: usize,
    /// the card's label, if it has one
    pub label: Option<String>,
    /// probability (after the activation)
    pub score: f32,
}

/// The top classes of one image's scores (`scores` holds one row: `[classes]` or `[1, classes]`).
pub fn classify(
    scores: &ArrayViewD<'_, f32>,
    settings: &ClassifySettings,
    labels: &[String],
) -> Result<Vec<Class>> {
    settings.validate()?;
    let n = scores.len();
    let row = crate::values(scores);
    if scores.shape().iter().filter(|&&d| d > 1).count() > 1 {
        return Err(Error::Output {
            output: settings.output.clone().unwrap_or_default(),
            message: format!(
                "expected one row of class scores, found shape {:?}",
                scores.shape()
            ),
        });
    }
    if !labels.is_empty() && labels.len() != n {
        return Err(Error::Card {
            section: "classification",
            message: format!("{} labels for {n} class scores", labels.len()),
        });
    }
    for (key, names) in [("allow", &settings.allow), ("deny", &settings.deny)] {
        if let Some(bad) = names.iter().find(|l| !labels.contains(l)) {
            return Err(Error::Card {
                section: "classification",
                message: format!("{key}: no class labelled '{bad}'"),
            });
        }
    }
    let probs = activate(&row, settings.activation);
    let mut classes: Vec<Class> = probs
        .iter()
        .enumerate()
        .map(|(index, &score)| Class {
            index,
            label: labels.get(index).cloned(),
            score,
        })
        .filter(|c| c.score >= settings.score_threshold)
        .filter(|c| {
            let label = c.label.as_deref().unwrap_or_default();
            (settings.allow.is_empty() || settings.allow.iter().any(|a| a == label))
                && !settings.deny.iter().any(|d| d == label)
        })
        .collect();
    // highest first; ties keep the lower index first
    classes.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.index.cmp(&b.index)));
    classes.truncate(settings.top_k);
    Ok(classes)
}

/// Classify straight from a model's outputs with the card's settings.
pub fn classify_outputs(
    outputs: &Outputs,
    settings: &ClassifySettings,
    labels: &[String],
) -> Result<Vec<Class>> {
    let scores = match &settings.output {
        Some(name) => outputs.get(name)?,
        None => outputs.by_index(0).ok_or_else(|| Error::Output {
            output: String::new(),
            message: "the model has no outputs".into(),
        })?,
    };
    classify(&scores.view(), settings, labels)
}

/// Scores → probabilities.
pub fn activate(scores: &[f32], activation: Activation) -> Vec<f32> {
    match activation {
        Activation::None => scores.to_vec(),
        Activation::Sigmoid => scores.iter().map(|&x| sigmoid(x)).collect(),
        Activation::Softmax => {
            let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let exp: Vec<f32> = scores.iter().map(|&x| (x - max).exp()).collect();
            let sum: f32 = exp.iter().sum();
            exp.iter().map(|&e| e / sum).collect()
        }
    }
}

pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorcv_infer::ndarray::{arr1, arr2};

    fn labels() -> Vec<String> {
        ["cat", "dog", "fox"].map(String::from).to_vec()
    }

    #[test]
    fn softmax_top_k_threshold_and_lists() {
        let logits = arr2(&[[1.0f32, 3.0, 2.0]]).into_dyn();
        let mut s = ClassifySettings {
            activation: Activation::Softmax,
            top_k: 2,
            ..Default::default()
        };
        let c = classify(&logits.view(), &s, &labels()).unwrap();
        // softmax([1, 3, 2]) = [0.0900, 0.6652, 0.2447]
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].index, c[0].label.as_deref()), (1, Some("dog")));
        assert!((c[0].score - 0.66524).abs() < 1e-4, "{c:?}");
        assert!((c[1].score - 0.24473).abs() < 1e-4, "{c:?}");
        s.score_threshold = 0.3;
        assert_eq!(classify(&logits.view(), &s, &labels()).unwrap().len(), 1);
        s.score_threshold = 0.0;
        s.deny = vec!["dog".into()];
        let c = classify(&logits.view(), &s, &labels()).unwrap();
        assert_eq!(c[0].label.as_deref(), Some("fox"));
        s.deny.clear();
        s.allow = vec!["cat".into()];
        let c = classify(&logits.view(), &s, &labels()).unwrap();
        assert_eq!(c.len(), 1);
        assert!((c[0].score - 0.09003).abs() < 1e-4);
    }

    #[test]
    fn bad_settings_name_the_problem() {
        let p = arr1(&[0.2f32, 0.8]).into_dyn();
        let e = classify(&p.view(), &ClassifySettings::default(), &labels())
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 labels for 2"), "{e}");
        let s = ClassifySettings {
            allow: vec!["wolf".into()],
            ..Default::default()
        };
        let p = arr1(&[0.2f32, 0.5, 0.3]).into_dyn();
        let e = classify(&p.view(), &s, &labels()).unwrap_err().to_string();
        assert!(e.contains("allow") && e.contains("'wolf'"), "{e}");
        let card = tensorcv_infer::ModelCard::parse(
            "[classification]\nactivation = \"softmax\"\ntopk = 3\n",
            "t.toml",
        )
        .unwrap();
        let e = ClassifySettings::from_card(&card).unwrap_err().to_string();
        assert!(e.contains("[classification]") && e.contains("topk"), "{e}");
        let p = arr2(&[[0.2f32, 0.8], [0.5, 0.5]]).into_dyn();
        let e = classify(&p.view(), &ClassifySettings::default(), &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("one row"), "{e}");
    }
}
