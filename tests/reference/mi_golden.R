# Reference values for analysis/mi_pool.py: Rubin's rules with Barnard-Rubin df
# as implemented in mice (pool.scalar / the internal barnard.rubin used by pool()).
#
# Writes <golden_dir>/mi_pool.csv, one row per case, numbers with 17 significant
# digits; inputs (per-imputation estimates and variances) are ';'-separated.
#
# Usage: Rscript mi_golden.R <golden_dir>

args <- commandArgs(trailingOnly = TRUE)
out_dir <- if (length(args) >= 1) args[1] else "golden"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)
suppressPackageStartupMessages(library(mice))

fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

pool_case <- function(case, Q, U, dfcom, level = 0.95) {
  # pool.scalar takes n and k with dfcom = n - k
  ps <- pool.scalar(Q, U, n = dfcom + 1, k = 1)
  lambda <- (1 + 1 / ps$m) * ps$b / ps$t   # as reported by mice::pool()
  se <- sqrt(ps$t)
  stat <- ps$qbar / se
  q <- qt(1 - (1 - level) / 2, ps$df)
  data.frame(case = case, m = ps$m, df_complete = fmt(dfcom),
             estimates = paste(fmt(Q), collapse = ";"),
             variances = paste(fmt(U), collapse = ";"),
             qbar = fmt(ps$qbar), ubar = fmt(ps$ubar), b = fmt(ps$b),
             t = fmt(ps$t), se = fmt(se), lambda = fmt(lambda), riv = fmt(ps$r),
             fmi = fmt(ps$fmi), df = fmt(ps$df), statistic = fmt(stat),
             p_value = fmt(2 * pt(abs(stat), ps$df, lower.tail = FALSE)),
             ci_low = fmt(ps$qbar - q * se), ci_high = fmt(ps$qbar + q * se),
             stringsAsFactors = FALSE)
}

rows <- list(
  pool_case("finite_dfcom", Q = c(1.21, 1.35, 0.98, 1.12, 1.40),
            U = c(0.040, 0.045, 0.038, 0.050, 0.042), dfcom = 50),
  pool_case("small_dfcom", Q = c(2.5, 3.1, 2.2, 2.9, 3.4, 2.7, 2.6, 3.0),
            U = c(0.30, 0.28, 0.35, 0.31, 0.29, 0.33, 0.30, 0.32), dfcom = 12),
  pool_case("large_dfcom", Q = c(0.52, 0.47, 0.55, 0.49, 0.51, 0.50, 0.53, 0.46,
                                 0.48, 0.54, 0.52, 0.50, 0.47, 0.51, 0.49, 0.53,
                                 0.50, 0.52, 0.48, 0.51),
            U = rep(c(0.0021, 0.0019, 0.0020, 0.0022), 5), dfcom = 1e5),
  pool_case("infinite_dfcom", Q = c(1.21, 1.35, 0.98, 1.12, 1.40),
            U = c(0.040, 0.045, 0.038, 0.050, 0.042), dfcom = Inf),
  pool_case("zero_b_infinite_dfcom", Q = rep(0.8, 5), U = c(0.02, 0.025, 0.022, 0.021, 0.024),
            dfcom = Inf),
  pool_case("zero_b_finite_dfcom", Q = rep(0.8, 5), U = c(0.02, 0.025, 0.022, 0.021, 0.024),
            dfcom = 30),
  pool_case("tiny_b", Q = c(0.8, 0.8 + 1e-5, 0.8 - 1e-5, 0.8, 0.8 + 2e-5),
            U = c(0.02, 0.025, 0.022, 0.021, 0.024), dfcom = 30)
)

# A real mice run: nhanes (shipped with mice), PMM, m = 5, fixed seed; the
# per-imputation coefficient and squared SE of bmi in lm(chl ~ bmi + age) are
# the inputs, and mice::pool()'s own output is the reference.
imp <- mice(nhanes, m = 5, seed = 20261122, printFlag = FALSE)
fit <- with(imp, lm(chl ~ bmi + age))
est <- sapply(fit$analyses, function(f) coef(f)[["bmi"]])
var <- sapply(fit$analyses, function(f) vcov(f)["bmi", "bmi"])
dfcom <- df.residual(fit$analyses[[1]])
nh <- pool_case("nhanes_bmi", est, var, dfcom)
pooled <- summary(pool(fit), conf.int = TRUE)
pr <- pooled[pooled$term == "bmi", ]
stopifnot(isTRUE(all.equal(as.numeric(nh$df), pr$df)),
          isTRUE(all.equal(as.numeric(nh$ci_low), pr$`2.5 %`)),
          isTRUE(all.equal(as.numeric(nh$p_value), pr$p.value)))
rows[[length(rows) + 1]] <- nh

out <- do.call(rbind, rows)
out$versions <- paste0(R.version.string, "; mice ", packageVersion("mice"))
write.csv(out, file.path(out_dir, "mi_pool.csv"), row.names = FALSE)
message("wrote ", file.path(out_dir, "mi_pool.csv"), " (", nrow(out), " cases)")
