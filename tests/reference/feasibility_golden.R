# Cluster-aware feasibility intervals (tests/test_feasibility_cluster.py).
#
#   Rscript feasibility_golden.R <datasets dir> <golden dir>
#
# Simulates site-level feasibility data (fixed seed) into datasets/feasibility_sites.csv and
# computes, independently of the Python code:
#  * proportions: survey::svyciprop(method = "beta") (Korn & Graubard 1998) for a design with
#    sites as clusters (svydesign(ids = ~site)), with svymean's variance and the effective
#    sample size, at 95% and 90%;
#  * rates: glm(y ~ 1 + offset(log(t)), family = quasipoisson): log rate, its SE, the Pearson
#    dispersion and the interval exp(coef +/- qt(1 - a/2, df.residual) * se).
suppressPackageStartupMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
datasets <- args[1]
golden <- args[2]
set.seed(20240612)

sim_prop <- function(K, mu, icc, mean_n) {
  n <- pmax(2L, as.integer(round(rgamma(K, shape = 4, scale = mean_n / 4))))
  p <- if (icc > 0) rbeta(K, mu * (1 - icc) / icc, (1 - mu) * (1 - icc) / icc) else rep(mu, K)
  data.frame(site = sprintf("s%02d", seq_len(K)), k = rbinom(K, n, p), n = n)
}
prop_cases <- list(
  p12_icc10 = sim_prop(12, 0.7, 0.10, 14),
  p6_icc05 = sim_prop(6, 0.85, 0.05, 12),
  p3_icc20 = sim_prop(3, 0.5, 0.20, 20),
  p8_high = sim_prop(8, 0.95, 0.05, 10),
  p4_low = sim_prop(4, 0.06, 0.02, 30)
)
rate_cases <- list(
  r12 = data.frame(site = sprintf("s%02d", 1:12), t = round(runif(12, 4, 12), 3)),
  r4 = data.frame(site = sprintf("s%02d", 1:4), t = round(runif(4, 6, 9), 3)),
  r6_flat = data.frame(site = sprintf("s%02d", 1:6), t = round(runif(6, 5, 10), 3))
)
rate_cases$r12$y <- rpois(12, rgamma(12, shape = 4, scale = 2.5 / 4) * rate_cases$r12$t)
rate_cases$r4$y <- rpois(4, rgamma(4, shape = 2, scale = 1.2 / 2) * rate_cases$r4$t)
rate_cases$r6_flat$y <- rpois(6, 0.8 * rate_cases$r6_flat$t)

rows <- list()
for (nm in names(prop_cases)) {
  d <- prop_cases[[nm]]
  rows[[length(rows) + 1]] <- data.frame(case = nm, kind = "proportion", site = d$site,
                                         k = d$k, n = d$n, y = NA, t = NA)
}
for (nm in names(rate_cases)) {
  d <- rate_cases[[nm]]
  rows[[length(rows) + 1]] <- data.frame(case = nm, kind = "rate", site = d$site,
                                         k = NA, n = NA, y = d$y, t = d$t)
}
sites <- do.call(rbind, rows)
write.csv(sites, file.path(datasets, "feasibility_sites.csv"), row.names = FALSE, na = "")

out <- list()
for (nm in names(prop_cases)) {
  d <- prop_cases[[nm]]
  long <- data.frame(site = rep(d$site, d$n),
                     y = unlist(mapply(function(k, n) c(rep(1, k), rep(0, n - k)), d$k, d$n)))
  des <- svydesign(ids = ~site, data = long, weights = ~1)
  m <- svymean(~y, des)
  for (level in c(0.95, 0.90)) {
    ci <- svyciprop(~y, des, method = "beta", level = level)
    p <- as.numeric(coef(m))
    v <- as.numeric(vcov(m))
    a <- 1 - level
    n_eff <- p * (1 - p) / v * (qt(a / 2, nrow(des) - 1) / qt(a / 2, degf(des)))^2
    out[[length(out) + 1]] <- data.frame(
      case = nm, kind = "proportion", level = level, estimate = as.numeric(ci),
      ci_low = attr(ci, "ci")[1], ci_high = attr(ci, "ci")[2], variance = v,
      design_effect = v / (p * (1 - p) / nrow(long)), n_eff = n_eff, df = degf(des),
      se_log = NA, dispersion = NA)
  }
}
for (nm in names(rate_cases)) {
  d <- rate_cases[[nm]]
  fit <- glm(y ~ 1 + offset(log(t)), family = quasipoisson, data = d,
             control = glm.control(epsilon = 1e-15, maxit = 100))  # pin the optimum
  s <- summary(fit)
  b <- coef(s)[1, 1]
  se <- coef(s)[1, 2]
  for (level in c(0.95, 0.90)) {
    q <- qt(1 - (1 - level) / 2, fit$df.residual)
    out[[length(out) + 1]] <- data.frame(
      case = nm, kind = "rate", level = level, estimate = exp(b),
      ci_low = exp(b - q * se), ci_high = exp(b + q * se), variance = NA,
      design_effect = s$dispersion, n_eff = NA, df = fit$df.residual, se_log = se,
      dispersion = s$dispersion)
  }
}
res <- do.call(rbind, out)
res$versions <- sprintf("R %s; survey %s", getRversion(), packageVersion("survey"))
num <- vapply(res, is.numeric, TRUE)
res[num] <- lapply(res[num], function(x) ifelse(is.na(x), NA, sprintf("%.17g", x)))
write.csv(res, file.path(golden, "feasibility_cluster.csv"), row.names = FALSE, na = "")
