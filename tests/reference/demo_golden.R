# Reference for the pipeline's primary analysis on the embedded demo trial.
#
# Input: datasets/demo_ancova.csv, the follow-up rows of the demo's linked analysis table
# (written from data/processed/demo/analysis.parquet; tests/test_outcomes.py checks the
# committed CSV still equals what the pipeline produces).
# Model at each follow-up: wemwbs_total ~ treat + wemwbs_total_bl + (1 | site_id), REML,
# Satterthwaite df for treat (lmerTest), with the same tight optimiser tolerance as
# lmm_golden.R.  Output: golden/demo_ancova.csv (17 significant digits).
#
# Usage: Rscript demo_golden.R <dataset_dir> <golden_dir>
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[1] else "datasets"
out_dir <- if (length(args) >= 2) args[2] else "golden"
suppressPackageStartupMessages({ library(lme4); library(lmerTest) })

tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-15,
                                    xtol_rel = 0, ftol_rel = 0, maxeval = 1e5))
d <- read.csv(file.path(data_dir, "demo_ancova.csv"), stringsAsFactors = FALSE)
d$treat <- as.numeric(d$arm == "intervention")
rows <- list()
for (tp in c("m3", "m9")) {
  sub <- d[d$timepoint == tp & !is.na(d$wemwbs_total) & !is.na(d$wemwbs_total_bl), ]
  fit <- lmerTest::lmer(wemwbs_total ~ treat + wemwbs_total_bl + (1 | site_id), data = sub,
                        REML = TRUE, control = tight)
  co <- summary(fit)$coefficients["treat", ]
  ci <- contest(fit, L = c(0, 1, 0), joint = FALSE, confint = TRUE, level = 0.95)
  vc <- as.data.frame(VarCorr(fit))
  rows[[tp]] <- data.frame(
    timepoint = tp, n = nrow(sub), estimate = co[["Estimate"]], se = co[["Std. Error"]],
    df = co[["df"]], p_value = co[["Pr(>|t|)"]], ci_low = ci$lower, ci_high = ci$upper,
    site_variance = vc$vcov[vc$grp == "site_id"], residual_variance = vc$vcov[vc$grp == "Residual"],
    singular = isSingular(fit), lme4 = as.character(packageVersion("lme4")),
    lmerTest = as.character(packageVersion("lmerTest")), R = R.version.string)
}
out <- do.call(rbind, rows)
num <- sapply(out, is.numeric)
out[num] <- lapply(out[num], function(x) sprintf("%.17g", x))
write.csv(out, file.path(out_dir, "demo_ancova.csv"), row.names = FALSE)
