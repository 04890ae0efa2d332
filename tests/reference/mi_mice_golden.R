# mice (R) on the MAR datasets of tests/reference/mi_mar_datasets.py: the pooled treatment
# effect of lm(y1 ~ treat + y0) after imputing y1 with pmm and with norm (m = 20, maxit = 5,
# all other variables as predictors).  Output: one row per dataset.
#   Rscript mi_mice_golden.R DATASET_DIR GOLDEN_DIR
suppressMessages(library(mice))
args <- commandArgs(trailingOnly = TRUE)
files <- sort(list.files(args[1], pattern = "^d[0-9]+\\.csv$", full.names = TRUE))
pooled <- function(d, method) {
  imp <- mice(d, m = 20, maxit = 5, method = method, printFlag = FALSE, seed = 20261122)
  p <- summary(pool(with(imp, lm(y1 ~ treat + y0))), conf.int = TRUE)
  p[p$term == "treat", ]
}
out <- do.call(rbind, lapply(seq_along(files), function(k) {
  d <- read.csv(files[k])
  a <- pooled(d, "pmm"); b <- pooled(d, "norm")
  data.frame(dataset = k - 1, n_missing = sum(is.na(d$y1)),
             pmm_estimate = a$estimate, pmm_se = a$std.error,
             norm_estimate = b$estimate, norm_se = b$std.error)
}))
write.csv(out, file.path(args[2], "mi_mar_mice.csv"), row.names = FALSE)
cat(sprintf("mice %s on %d datasets\n", packageVersion("mice"), nrow(out)))
