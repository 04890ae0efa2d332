# Planning inputs of the embedded demo trial, computed independently in R, for
# tests/test_planning.py (analysis.planning.planning_inputs).
#
#   golden/planning_inputs_demo.csv  one row per planning input: estimate, CI (95%), UCL
#
# Inputs: datasets/demo_linked.csv (the demo's linked table, neutral participant codes) and
# the demo's raw sites file (recruitment windows).  The primary outcome is wemwbs_total at m9.
#   * SD at m9 pooled within arms: sigma of lm(y ~ arm); 95% chi-square CI; Browne's 80% UCL
#     sigma * sqrt(df / qchisq(0.2, df))
#   * residual SD after baseline adjustment: sigma of lm(y ~ arm + y_bl), same intervals
#   * baseline-m9 correlation within arms: correlation of the residuals of y and y_bl on arm;
#     Fisher z interval with n - 4 (one variable partialled out)
#   * ICC without and with baseline adjustment: lmer(y ~ arm [+ y_bl] + (1 | site_id)), REML,
#     profile-likelihood 95% CI from lme4's REML deviance function (as demo_golden.R)
#   * site sizes: mean (t interval) and coefficient of variation (Vangel's modified McKay
#     interval) of participants per site
#   * retention (wemwbs_total observed at m9 / allocated): survey::svyciprop(method = "beta")
#     with sites as clusters (Korn-Graubard)
#   * recruitment per site-month: glm(n ~ offset(log(months)), quasipoisson), interval
#     exp(b +/- qt(0.975, K - 1) se)
#
# Usage: Rscript planning_golden.R <dataset_dir> <golden_dir> <raw_demo_dir>
args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[1] else "datasets"
out_dir <- if (length(args) >= 2) args[2] else "golden"
raw_dir <- if (length(args) >= 3) args[3] else "../../data/raw/demo"
suppressPackageStartupMessages({ library(lme4); library(survey) })

tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-15,
                                    xtol_rel = 0, ftol_rel = 0, maxeval = 1e5))
raw <- read.csv(file.path(data_dir, "demo_linked.csv"), stringsAsFactors = FALSE)
base <- raw[raw$timepoint == "baseline", c("participant", "wemwbs_total")]
names(base)[2] <- "y_bl"
d <- raw[raw$timepoint == "m9", ]
d$y <- d$wemwbs_total
d <- merge(d, base, by = "participant", sort = FALSE)
d$treat <- as.numeric(d$arm == "intervention")
fu <- d[!is.na(d$y), ]
both <- fu[!is.na(fu$y_bl), ]
rows <- list()
add <- function(parameter, estimate, lo = NA, hi = NA, ucl = NA, n = NA, df = NA) {
  rows[[length(rows) + 1]] <<- data.frame(parameter = parameter, estimate = estimate, ci_low = lo,
                                          ci_high = hi, ucl = ucl, n = n, df = df)
}
sd_rows <- function(parameter, fit) {
  s <- sigma(fit); df <- df.residual(fit)
  add(parameter, s, s * sqrt(df / qchisq(0.975, df)), s * sqrt(df / qchisq(0.025, df)),
      s * sqrt(df / qchisq(0.2, df)), nobs(fit), df)
}
sd_rows("sd_followup", lm(y ~ arm, data = fu))
sd_rows("sd_residual", lm(y ~ arm + y_bl, data = both))
r <- cor(resid(lm(y ~ arm, data = both)), resid(lm(y_bl ~ arm, data = both)))
h <- qnorm(0.975) / sqrt(nrow(both) - 4)
add("correlation", r, tanh(atanh(r) - h), tanh(atanh(r) + h), n = nrow(both))

icc_profile <- function(formula, dd, level = 0.95) {
  fit <- lmer(formula, data = dd, REML = TRUE, control = tight)
  dev <- lmer(formula, data = dd, REML = TRUE, control = tight, devFunOnly = TRUE)
  th <- getME(fit, "theta")
  dmin <- dev(th)
  crit <- qchisq(level, 1)
  rho_hat <- th^2 / (1 + th^2)
  g <- function(rho) dev(sqrt(rho / (1 - rho))) - dmin - crit
  lo <- if (rho_hat > 0 && g(0) > 0) uniroot(g, c(0, rho_hat), tol = 1e-12)$root else 0
  hi_edge <- 1 - 1e-8
  hi <- if (g(hi_edge) <= 0) 1 else uniroot(g, c(max(rho_hat, 1e-12), hi_edge), tol = 1e-12)$root
  c(unname(rho_hat), lo, hi, nrow(dd))
}
v <- icc_profile(y ~ arm + (1 | site_id), fu)
add("icc", v[1], v[2], v[3], n = v[4])
v <- icc_profile(y ~ arm + y_bl + (1 | site_id), both)
add("icc_adjusted", v[1], v[2], v[3], n = v[4])

sizes <- as.vector(table(raw$site_id[raw$timepoint == "baseline"]))
k <- length(sizes); m <- mean(sizes); s <- sd(sizes)
half <- qt(0.975, k - 1) * s / sqrt(k)
add("cluster_size_mean", m, m - half, m + half, n = sum(sizes))
cv <- s / m
vangel <- function(u) cv / sqrt(((u + 2) / k - 1) * cv^2 + u / (k - 1))
add("cluster_size_cv", cv, vangel(qchisq(0.975, k - 1)), vangel(qchisq(0.025, k - 1)), n = sum(sizes))

alloc <- raw[raw$timepoint == "m9", c("participant", "site_id", "wemwbs_total")]
alloc$observed <- as.numeric(!is.na(alloc$wemwbs_total))
des <- svydesign(ids = ~site_id, data = alloc)
ret <- svyciprop(~observed, des, method = "beta", level = 0.95)
ci <- attr(ret, "ci")
add("retention", as.numeric(ret), ci[1], ci[2], n = nrow(alloc))

sites <- read.csv(file.path(raw_dir, "sites.csv"), stringsAsFactors = FALSE)
sites$months <- (as.numeric(as.Date(sites$recruitment_end) - as.Date(sites$recruitment_start)) + 1) / (365.25 / 12)
counts <- table(factor(raw$site_id[raw$timepoint == "baseline"], levels = sites$site_id))
sites$n <- as.vector(counts)
fit <- glm(n ~ offset(log(months)), family = quasipoisson, data = sites)
b <- coef(fit)[1]; se <- sqrt(vcov(fit)[1, 1]); q <- qt(0.975, nrow(sites) - 1)
add("recruitment_rate", exp(b), exp(b - q * se), exp(b + q * se), n = sum(sites$n))

out <- do.call(rbind, rows)
num <- sapply(out, is.numeric)
out[num] <- lapply(out[num], function(x) sprintf("%.17g", x))
out$R <- R.version.string
out$lme4 <- as.character(packageVersion("lme4"))
out$survey <- as.character(packageVersion("survey"))
write.csv(out, file.path(out_dir, "planning_inputs_demo.csv"), row.names = FALSE)
