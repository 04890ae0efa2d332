# Tail probabilities of the expanded percentile interval of the propensity-weighted economic
# evaluation (analysis/economics.py: _Percentile, _few_kept_text; checked by
# tests/test_economics_propensity.py).  The interval at confidence level L with d degrees of
# freedom takes the percentiles at the tail probability
#     tail = P(Z < t_{(1 - L) / 2, d}) = pnorm(qt((1 - L) / 2, d))
# (the normal probability beyond the t quantile: a widening for few clusters), and about 10
# replicates are wanted beyond each end, so the replicates needed are ceiling(10 / tail).  With
# very few degrees of freedom the tail is vanishingly small (0 in double precision at 1 df and
# 99%: the replicates needed are then infinite, written Inf).
# Grid: d = 1..30, 40, 60, 100 and L = 0.90, 0.95, 0.99.
# Output: golden/expanded_tails.csv (level, df, t_quantile, tail, need; 17 significant digits).
# Usage: Rscript expanded_tail_golden.R <golden dir>
args <- commandArgs(trailingOnly = TRUE)
golden <- if (length(args) >= 1) args[1] else "tests/reference/golden"
grid <- expand.grid(df = c(1:30, 40, 60, 100), level = c(0.90, 0.95, 0.99))
grid <- grid[order(grid$level, grid$df), c("level", "df")]
grid$t_quantile <- qt((1 - grid$level) / 2, grid$df, lower.tail = FALSE)
grid$tail <- pnorm(grid$t_quantile, lower.tail = FALSE)
# the same tail from the lower end: the two must agree (a check on the symmetry used above)
lower <- pnorm(qt((1 - grid$level) / 2, grid$df))
stopifnot(isTRUE(all.equal(lower, grid$tail, tolerance = 1e-13)))
grid$need <- ceiling(10 / grid$tail)
# 12 df at 95% (14 agencies): the figure quoted in the warning's test
stopifnot(grid$need[grid$level == 0.95 & grid$df == 12] == 682)
fmt <- function(x) ifelse(is.infinite(x), "Inf", sprintf("%.17g", x))
out <- data.frame(level = sprintf("%.2f", grid$level), df = grid$df, t_quantile = fmt(grid$t_quantile),
                  tail = fmt(grid$tail), need = fmt(grid$need), r_version = R.version.string)
write.csv(out, file.path(golden, "expanded_tails.csv"), row.names = FALSE)
