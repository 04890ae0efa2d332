# Reference for the pipeline's outcome analyses on the embedded demo trial.
#
# Input: datasets/demo_linked.csv, the demo's linked analysis table (all time points) with
# participant IDs replaced by neutral codes (written by demo_dataset.py;
# tests/test_outcomes.py checks the pipeline still produces exactly these data).
# The baseline value of an outcome is its value at the baseline time point.
# All fits REML with the same tight optimiser tolerance as lmm_golden.R; Satterthwaite df by
# lmerTest (contest). Outputs (17 significant digits):
#   golden/demo_ancova.csv      wemwbs_total ~ treat + baseline + (1|site_id) at m3 and m9
#   golden/demo_rm.csv          repeated-measures model per outcome:
#                               y ~ time + trt_m3 + trt_m9 + y_bl + (1|site_id) + (1|participant)
#                               (all available follow-ups, and complete cases for wemwbs_total)
#   golden/demo_icc_profile.csv profile-likelihood 95% CI of the site ICC, computed here from
#                               lme4's REML deviance function (devFunOnly) with optimize/uniroot
#   golden/demo_effect_modification.csv  wemwbs_total with treat x client_group and
#                               treat x site fidelity (>= 70 vs < 70, intervention sites only)
#
# Usage: Rscript demo_golden.R <dataset_dir> <golden_dir>
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[1] else "datasets"
out_dir <- if (length(args) >= 2) args[2] else "golden"
suppressPackageStartupMessages({ library(lme4); library(lmerTest) })

tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-15,
                                    xtol_rel = 0, ftol_rel = 0, maxeval = 1e5))
versions <- function() data.frame(lme4 = as.character(packageVersion("lme4")),
                                  lmerTest = as.character(packageVersion("lmerTest")),
                                  R = R.version.string)
fmt <- function(out) {
  num <- sapply(out, is.numeric)
  out[num] <- lapply(out[num], function(x) sprintf("%.17g", x))
  out
}
raw <- read.csv(file.path(data_dir, "demo_linked.csv"), stringsAsFactors = FALSE)
outcomes <- c("wemwbs_total", "ucla3_total", "eq5d5l_index", "rguk_total")

long_for <- function(y) {
  base <- raw[raw$timepoint == "baseline", c("participant", y)]
  names(base)[2] <- "y_bl"
  d <- raw[raw$timepoint != "baseline", ]
  d$y <- d[[y]]
  d <- merge(d, base, by = "participant", sort = FALSE)
  d$treat <- as.numeric(d$arm == "intervention")
  d$time <- factor(d$timepoint, levels = c("m3", "m9"))
  d$trt_m3 <- d$treat * (d$timepoint == "m3")
  d$trt_m9 <- d$treat * (d$timepoint == "m9")
  d[!is.na(d$y) & !is.na(d$y_bl), ]
}
contrast_row <- function(fit, L, level = 0.95) {
  ct <- contest(fit, L = L, joint = FALSE, confint = TRUE, level = level)
  data.frame(estimate = ct$Estimate, se = ct$`Std. Error`, df = ct$df, p_value = ct$`Pr(>|t|)`,
             ci_low = ct$lower, ci_high = ct$upper)
}
vc <- function(fit) {
  v <- as.data.frame(VarCorr(fit))
  g <- function(n) if (n %in% v$grp) v$vcov[v$grp == n] else NA_real_
  data.frame(site_variance = g("site_id"), participant_variance = g("participant"),
             residual_variance = g("Residual"), singular = isSingular(fit))
}

# --- single-time-point ANCOVA (wemwbs_total) ------------------------------------------
d <- long_for("wemwbs_total")
rows <- list()
for (tp in c("m3", "m9")) {
  sub <- d[d$timepoint == tp, ]
  fit <- lmerTest::lmer(y ~ treat + y_bl + (1 | site_id), data = sub, REML = TRUE, control = tight)
  rows[[tp]] <- cbind(data.frame(timepoint = tp, n = nrow(sub)),
                      contrast_row(fit, c(0, 1, 0)), vc(fit)[, c("site_variance", "residual_variance", "singular")],
                      versions())
}
write.csv(fmt(do.call(rbind, rows)), file.path(out_dir, "demo_ancova.csv"), row.names = FALSE)

# --- repeated-measures primary model --------------------------------------------------
rm_fit <- function(dd) lmerTest::lmer(y ~ time + trt_m3 + trt_m9 + y_bl + (1 | site_id) + (1 | participant),
                                      data = dd, REML = TRUE, control = tight)
rows <- list()
fits <- list()
for (y in outcomes) {
  for (analysis in c("primary", "complete_case")) {
    dd <- long_for(y)
    if (analysis == "complete_case") {
      if (y != "wemwbs_total") next
      full <- names(which(table(dd$participant) == 2))
      dd <- dd[dd$participant %in% full, ]
    }
    fit <- rm_fit(dd)
    fits[[paste(y, analysis)]] <- list(fit = fit, data = dd)
    fe <- names(fixef(fit))
    for (tp in c("m3", "m9")) {
      L <- as.numeric(fe == paste0("trt_", tp))
      rows[[paste(y, analysis, tp)]] <- cbind(
        data.frame(outcome = y, analysis = analysis, timepoint = tp, n = sum(dd$timepoint == tp),
                   nobs = nrow(dd)), contrast_row(fit, L), vc(fit), versions())
    }
  }
}
write.csv(fmt(do.call(rbind, rows)), file.path(out_dir, "demo_rm.csv"), row.names = FALSE)

# --- profile-likelihood CI of the site ICC ---------------------------------------------
# ICC = theta_site^2 / (1 + sum theta^2) with theta = relative SDs (lme4's theta for scalar
# random intercepts). For fixed ICC rho the REML criterion is minimised over the other theta.
icc_profile <- function(formula, dd, level = 0.95) {
  fit <- lmer(formula, data = dd, REML = TRUE, control = tight)
  dev <- lmer(formula, data = dd, REML = TRUE, control = tight, devFunOnly = TRUE)
  th <- getME(fit, "theta")
  j <- grep("^site_id", names(th))
  others <- setdiff(seq_along(th), j)
  dmin <- dev(th)
  crit <- qchisq(level, 1)
  theta_at <- function(rho, t_other) {
    v <- numeric(length(th)); v[others] <- t_other
    v[j] <- sqrt(rho * (1 + sum(t_other^2)) / (1 - rho)); v
  }
  prof <- function(rho) {
    if (length(others) == 0) return(dev(theta_at(rho, numeric(0))))
    optimize(function(t) dev(theta_at(rho, t)), c(0, 20), tol = 1e-12)$objective
  }
  rho_hat <- th[j]^2 / (1 + sum(th^2))
  g <- function(rho) prof(rho) - dmin - crit
  lo <- if (rho_hat > 0 && g(0) > 0) uniroot(g, c(0, rho_hat), tol = 1e-12)$root else 0
  hi_edge <- 1 - 1e-8
  hi <- if (g(hi_edge) <= 0) 1 else uniroot(g, c(max(rho_hat, 1e-12), hi_edge), tol = 1e-12)$root
  data.frame(icc = unname(rho_hat), icc_ci_low = lo, icc_ci_high = hi)
}
rows <- list()
for (y in outcomes) {
  dd <- long_for(y)
  rows[[paste(y, "rm")]] <- cbind(data.frame(outcome = y, model = "primary", timepoint = "all"),
    icc_profile(y ~ time + trt_m3 + trt_m9 + y_bl + (1 | site_id) + (1 | participant), dd), versions())
}
dd <- long_for("wemwbs_total")
for (tp in c("m3", "m9")) {
  rows[[paste("ancova", tp)]] <- cbind(data.frame(outcome = "wemwbs_total", model = "ancova", timepoint = tp),
    icc_profile(y ~ treat + y_bl + (1 | site_id), dd[dd$timepoint == tp, ]), versions())
}
write.csv(fmt(do.call(rbind, rows)), file.path(out_dir, "demo_icc_profile.csv"), row.names = FALSE)

# --- effect modification (wemwbs_total) -------------------------------------------------
dd <- long_for("wemwbs_total")
rows <- list()
# client group (defined in both arms): main effect + treat x group, common to both follow-ups
dd$mod_1 <- as.numeric(dd$client_group == "learning_disability")
dd$mod_2 <- as.numeric(dd$client_group == "psychosis")
dd$trtmod_1 <- dd$treat * dd$mod_1
dd$trtmod_2 <- dd$treat * dd$mod_2
fit <- lmerTest::lmer(y ~ time + trt_m3 + trt_m9 + y_bl + mod_1 + trtmod_1 + mod_2 + trtmod_2 +
                        (1 | site_id) + (1 | participant), data = dd, REML = TRUE, control = tight)
fe <- names(fixef(fit))
L <- function(...) { w <- c(...); v <- numeric(length(fe)); v[match(names(w), fe)] <- w; v }
add <- function(mod, tp, term, Lv) rows[[length(rows) + 1]] <<- cbind(
  data.frame(modifier = mod, timepoint = tp, term = term), contrast_row(fit, Lv), versions())
add("client_group", "all follow-ups", "interaction: client_group learning_disability vs common_mental_health", L(trtmod_1 = 1))
add("client_group", "all follow-ups", "interaction: client_group psychosis vs common_mental_health", L(trtmod_2 = 1))
add("client_group", "m9", "within psychosis", L(trt_m9 = 1, trtmod_2 = 1))
# site fidelity (intervention sites only): no main effect, controls are the comparison
dd$hi <- as.numeric(!is.na(dd$site_fidelity) & dd$site_fidelity >= 70)
dd$trtmod_1 <- dd$treat * dd$hi
fit <- lmerTest::lmer(y ~ time + trt_m3 + trt_m9 + y_bl + trtmod_1 + (1 | site_id) + (1 | participant),
                      data = dd, REML = TRUE, control = tight)
fe <- names(fixef(fit))
add("site fidelity", "all follow-ups", "interaction: site fidelity high (>= 70) vs low (< 70)", L(trtmod_1 = 1))
add("site fidelity", "m9", "within high", L(trt_m9 = 1, trtmod_1 = 1))
write.csv(fmt(do.call(rbind, rows)), file.path(out_dir, "demo_effect_modification.csv"), row.names = FALSE)
