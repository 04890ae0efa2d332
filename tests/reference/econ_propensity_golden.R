# Golden reference for the propensity-weighted economic evaluation (analysis/economics.py,
# weighting=; tests/test_economics_propensity.py), independent of Python: on the participant
# table of the non-randomised example (datasets/cpi_quasi_economics.csv, written by
# econ_propensity_dataset.py), the score by glm (logit) on every participant, ATT, stabilised
# ATE, overlap and 0.05-trimmed stabilised ATE weights by hand, and the incremental cost and
# effect by lm(..., weights = w) on [treat, baseline effect, baseline cost] among complete cases
# (missing baselines replaced by their mean over all participants, as the unweighted analysis
# does), for QALYs and the SWEMWBS total; unweighted too.  Then three bootstrap replicates
# (count_1..count_3): the score model refitted by glm with the replicate's counts as frequency
# weights, ATT weights recomputed, regression weights count x weight.
#   Rscript tests/reference/econ_propensity_golden.R [datasets-dir] [golden-dir]
# Measured with R 4.2.2 (stats only).
args <- commandArgs(trailingOnly = TRUE)
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
dsdir <- if (length(args) >= 1) args[1] else file.path(here, "datasets")
gdir <- if (length(args) >= 2) args[2] else file.path(here, "golden")
d <- read.csv(file.path(dsdir, "cpi_quasi_economics.csv"), stringsAsFactors = FALSE)
d$client_group <- factor(d$client_group)  # levels sorted, first = reference (as covariate_matrix)
d$sex <- factor(d$sex)
options(digits = 15)
imp <- function(x) ifelse(is.na(x), mean(x, na.rm = TRUE), x)
d$cost_bl_i <- imp(d$cost_bl)
d$utility_bl_i <- imp(d$utility_bl)
d$swemwbs_bl_i <- imp(d$swemwbs_bl)
ctl <- glm.control(epsilon = 1e-14, maxit = 200)
t <- d$treated

weights_for <- function(e, t, estimand, trim = 0, count = rep(1, length(t))) {
  keep <- if (trim > 0) e >= trim & e <= 1 - trim else rep(TRUE, length(e))
  p1 <- sum((count * t)[keep]) / sum(count[keep])
  w <- switch(estimand,
              ATT = ifelse(t == 1, 1, e / (1 - e)),
              ATE = ifelse(t == 1, p1 / e, (1 - p1) / (1 - e)),
              overlap = ifelse(t == 1, 1 - e, e))
  ifelse(keep, w, 0)
}

equations <- list(
  cea_qaly = list(effect = "qaly", f_cost = cost ~ treated + utility_bl_i + cost_bl_i,
                  f_effect = qaly ~ treated + utility_bl_i + cost_bl_i),
  swemwbs_total = list(effect = "swemwbs", f_cost = cost ~ treated + swemwbs_bl_i + cost_bl_i,
                       f_effect = swemwbs ~ treated + swemwbs_bl_i + cost_bl_i))

increments <- function(w) {
  out <- NULL
  for (nm in names(equations)) {
    eq <- equations[[nm]]
    cc <- !is.na(d$cost) & !is.na(d[[eq$effect]]) & w > 0
    dd <- d[cc, ]
    dd$ww_ <- w[cc]
    mc <- lm(eq$f_cost, data = dd, weights = ww_)
    me <- lm(eq$f_effect, data = dd, weights = ww_)
    out <- rbind(out, data.frame(equation = nm, delta_cost = coef(mc)[["treated"]],
                                 delta_effect = coef(me)[["treated"]], n = nrow(dd),
                                 n_intervention = sum(dd$treated), n_control = sum(1 - dd$treated)))
  }
  out
}

fit <- glm(treated ~ client_group + age + sex, family = binomial, data = d, control = ctl)
e <- fitted(fit)
point <- NULL
cases <- list(unweighted = NULL, ATT = list("ATT", 0), ATE = list("ATE", 0), overlap = list("overlap", 0),
              ATE_trim05 = list("ATE", 0.05))
for (nm in names(cases)) {
  cs <- cases[[nm]]
  w <- if (is.null(cs)) rep(1, nrow(d)) else weights_for(e, t, cs[[1]], cs[[2]])
  point <- rbind(point, cbind(weighting = nm, n_trimmed = sum(w == 0), increments(w)))
}

reps <- NULL
for (k in 1:3) {
  cnt <- d[[paste0("count_", k)]]
  fk <- suppressWarnings(glm(treated ~ client_group + age + sex, family = binomial, data = d, weights = cnt,
                             control = ctl))
  ek <- predict(fk, newdata = d, type = "response")
  w <- ifelse(cnt > 0, weights_for(ek, t, "ATT", 0, cnt), 0)
  r <- increments(cnt * w)
  reps <- rbind(reps, cbind(replicate = k, converged = fk$converged,
                            max_abs_coef = max(abs(coef(fk))), r[, c("equation", "delta_cost", "delta_effect")]))
}

write.csv(point, file.path(gdir, "econ_propensity_point.csv"), row.names = FALSE)
write.csv(reps, file.path(gdir, "econ_propensity_replicates.csv"), row.names = FALSE)
cat("R", as.character(getRversion()), "\n")
