# Golden reference for the NHEFS example (config/examples/nhefs.yaml; tests/test_nhefs.py),
# independent of Python: read the converted raw files (data/raw/nhefs), fit the propensity score
# by glm (logit) on everyone with the covariates, make the stabilised ATE weights by hand, the
# balance table by hand, and the weighted outcome regressions at 1982 by survey::svyglm with
# svydesign(ids = ~1): each participant is a PSU, so the variance is the robust sandwich times
# n/(n - 1) with n - p degrees of freedom.  Also the book's own analysis (Hernán & Robins 2020,
# Programs 12.2-12.4: score and weights fitted on the 1,566 with a 1982 weight, weighted
# regression of the weight change on quitting, GEE-type robust variance = the HC0 sandwich,
# normal 95% CI), to show that the converted files give the book's 3.4 kg (2.4 to 4.5).
#   Rscript tests/reference/nhefs_golden.R [raw-dir] [golden-dir]
suppressPackageStartupMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
rawdir <- if (length(args) >= 1) args[1] else file.path(here, "..", "..", "data", "raw", "nhefs")
gdir <- if (length(args) >= 2) args[2] else file.path(here, "golden")
options(digits = 15)

rd <- function(f) read.csv(file.path(rawdir, f), colClasses = "character")
p <- rd("participants.csv")
bl <- rd("wave_baseline.csv"); fu <- rd("wave_1982.csv")
d <- data.frame(participant_id = p$participant_id, treated = as.numeric(p$arm == "quit"))
d$sex <- factor(p$sex, levels = c("female", "male"))
for (c in c("race", "education", "exercise", "active")) d[[c]] <- factor(p[[c]], levels = sort(unique(p[[c]])))
for (c in c("age", "age_squared", "smokeintensity", "smokeintensity_squared", "smokeyrs", "smokeyrs_squared",
            "wt71_squared")) d[[c]] <- as.numeric(p[[c]])
d$weight_bl <- as.numeric(bl$weight[match(d$participant_id, bl$participant_id)])
d$weight_fu <- as.numeric(fu$weight[match(d$participant_id, fu$participant_id)])  # NA: no 1982 row
stopifnot(nrow(d) == 1629, sum(!is.na(d$weight_fu)) == 1566, !anyNA(d$weight_bl))

# ---- propensity model: all 1,629 (Pathways fits the score to everyone with the covariates) ----
ps_formula <- treated ~ sex + race + age + age_squared + education + smokeintensity + smokeintensity_squared +
  smokeyrs + smokeyrs_squared + exercise + active + weight_bl + wt71_squared
fit <- glm(ps_formula, family = binomial, data = d, control = glm.control(epsilon = 1e-14, maxit = 100))
co <- summary(fit)$coefficients
model <- data.frame(term = rownames(co), estimate = co[, 1], se = co[, 2], row.names = NULL)
e <- fitted(fit); t <- d$treated
p1 <- mean(t)
w <- ifelse(t == 1, p1 / e, (1 - p1) / (1 - e))  # stabilised ATE weights, no trimming
weights <- data.frame(participant_id = d$participant_id, ps = e, weight = w)

# ---- balance (ATE: SMD denominator sqrt((s1^2 + s0^2) / 2), unweighted) ---------------------
wmean <- function(x, w) sum(w * x) / sum(w)
wvar <- function(x, w) { m <- wmean(x, w); sum(w * (x - m)^2) * sum(w) / (sum(w)^2 - sum(w^2)) }
cols <- list()
for (nm in c("sex", "race", "age", "age_squared", "education", "smokeintensity", "smokeintensity_squared",
             "smokeyrs", "smokeyrs_squared", "exercise", "active", "weight_bl", "wt71_squared")) {
  x <- d[[nm]]
  if (is.factor(x)) {
    for (lev in levels(x)) cols[[paste0(nm, "|", lev)]] <- list(x = as.numeric(x == lev), num = FALSE)
  } else cols[[paste0(nm, "|")]] <- list(x = x, num = TRUE)
}
bal <- NULL
for (nm in names(cols)) {
  x <- cols[[nm]]$x
  v1 <- var(x[t == 1]); v0 <- var(x[t == 0]); den <- sqrt((v1 + v0) / 2)
  parts <- strsplit(nm, "|", fixed = TRUE)[[1]]
  bal <- rbind(bal, data.frame(
    covariate = parts[1], level = ifelse(length(parts) > 1, parts[2], ""),
    smd_before = (mean(x[t == 1]) - mean(x[t == 0])) / den,
    smd_after = (wmean(x[t == 1], w[t == 1]) - wmean(x[t == 0], w[t == 0])) / den,
    variance_ratio_before = if (cols[[nm]]$num) v1 / v0 else NA,
    variance_ratio_after = if (cols[[nm]]$num) wvar(x[t == 1], w[t == 1]) / wvar(x[t == 0], w[t == 0]) else NA))
}

# ---- weighted outcome regressions at 1982: svyglm, each participant a PSU --------------------
fu_d <- d[!is.na(d$weight_fu), ]
fu_d$w <- w[!is.na(d$weight_fu)]
covs <- "sex + race + age + age_squared + education + smokeintensity + smokeintensity_squared + smokeyrs + smokeyrs_squared + exercise + active + wt71_squared"
effects <- NULL
for (an in c("unweighted_baseline", "unweighted_covariates", "weighted_baseline", "weighted_covariates")) {
  dd <- fu_d
  if (startsWith(an, "unweighted")) dd$w <- 1
  f <- as.formula(if (endsWith(an, "baseline")) "weight_fu ~ treated + weight_bl"
                  else paste("weight_fu ~ treated + weight_bl +", covs))
  m <- svyglm(f, design = svydesign(ids = ~1, weights = ~w, data = dd))
  b <- coef(m)[["treated"]]; se <- sqrt(vcov(m)["treated", "treated"]); df <- m$df.residual
  q <- qt(0.975, df)
  effects <- rbind(effects, data.frame(analysis = an, estimate = b, se = se, df = df, ci_low = b - q * se,
                                       ci_high = b + q * se, n = nrow(dd)))
}

# ---- the book's analysis (Programs 12.2-12.4): the 1,566 with a 1982 weight ------------------
hc0 <- function(X, y, w) {  # weighted least squares with the HC0 sandwich (GEE, independence)
  A <- crossprod(X, w * X); b <- solve(A, crossprod(X, w * y)); r <- as.vector(y - X %*% b)
  U <- X * (w * r); V <- solve(A) %*% crossprod(U) %*% solve(A)
  c(b[2], sqrt(V[2, 2]))
}
bk <- d[!is.na(d$weight_fu), ]
bfit <- glm(ps_formula, family = binomial, data = bk)
be <- fitted(bfit); bt <- bk$treated
change <- bk$weight_fu - bk$weight_bl
X <- cbind(1, bt)
book <- NULL
for (kind in c("nonstabilised", "stabilised")) {
  bw <- if (kind == "nonstabilised") ifelse(bt == 1, 1 / be, 1 / (1 - be))
        else ifelse(bt == 1, mean(bt) / be, (1 - mean(bt)) / (1 - be))
  r <- hc0(X, change, bw)
  book <- rbind(book, data.frame(analysis = paste0("book_", kind), outcome = "weight change 1971-1982",
                                 estimate = r[1], se = r[2], ci_low = r[1] - qnorm(0.975) * r[2],
                                 ci_high = r[1] + qnorm(0.975) * r[2], n = nrow(bk)))
}

# ---- from the book's model to Pathways': score fitted on 1,629 or 1,566, change or ANCOVA -------
bk$w_all <- w[!is.na(d$weight_fu)]
bk$w_cc <- ifelse(bt == 1, mean(bt) / be, (1 - mean(bt)) / (1 - be))
bk$change <- change
steps <- NULL
for (sc in c("score_1629", "score_1566")) for (om in c("change", "ancova")) {
  dd <- bk; dd$w <- if (sc == "score_1629") dd$w_all else dd$w_cc
  f <- if (om == "change") change ~ treated else weight_fu ~ treated + weight_bl
  m <- svyglm(f, design = svydesign(ids = ~1, weights = ~w, data = dd))
  steps <- rbind(steps, data.frame(score = sc, outcome_model = om, estimate = coef(m)[["treated"]],
                                   se = sqrt(vcov(m)["treated", "treated"]), n = nrow(dd)))
}

inputs <- data.frame(file = c("participants.csv", "wave_baseline.csv", "wave_1982.csv"))
inputs$md5 <- unname(tools::md5sum(file.path(rawdir, inputs$file)))
wr <- function(x, f) write.csv(x, file.path(gdir, f), row.names = FALSE)
wr(model, "nhefs_model.csv")
wr(weights, "nhefs_weights.csv")
wr(bal, "nhefs_balance.csv")
wr(effects, "nhefs_effects.csv")
wr(book, "nhefs_book.csv")
wr(steps, "nhefs_steps.csv")
wr(inputs, "nhefs_inputs.csv")
cat("R", as.character(getRversion()), "survey", as.character(packageVersion("survey")), "\n")
