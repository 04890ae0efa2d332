# Golden reference for analysis/propensity.py (tests/test_propensity.py), independent of Python:
# the propensity score by glm (logit), the ATT, ATE (stabilised) and overlap weights by hand,
# an ATE with Crump trimming at 0.05, the balance table by hand (SMD, variance ratio), the
# weighted outcome regression by survey::svyglm (agencies as PSUs, one-stage cluster design) and
# the E-value (VanderWeele & Ding 2017) by hand.
#   Rscript tests/reference/propensity_golden.R [datasets-dir] [golden-dir]
# Measured with R 4.2.2, survey 4.1.1.
suppressPackageStartupMessages(library(survey))
args <- commandArgs(trailingOnly = TRUE)
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
dsdir <- if (length(args) >= 1) args[1] else file.path(here, "datasets")
gdir <- if (length(args) >= 2) args[2] else file.path(here, "golden")
d <- read.csv(file.path(dsdir, "propensity_pilot.csv"), stringsAsFactors = FALSE)
d$client_group <- factor(d$client_group)  # levels in sorted order, first = reference
d$sex <- factor(d$sex)
options(digits = 15)

# ---- propensity model ---------------------------------------------------------------------
fit <- glm(treated ~ client_group + age + sex, family = binomial, data = d,
           control = glm.control(epsilon = 1e-14, maxit = 100))
co <- summary(fit)$coefficients
model <- data.frame(term = rownames(co), estimate = co[, 1], se = co[, 2], row.names = NULL)
e <- fitted(fit)
t <- d$treated

# ---- weights ------------------------------------------------------------------------------
w_att <- ifelse(t == 1, 1, e / (1 - e))
p1 <- mean(t)
w_ate <- ifelse(t == 1, p1 / e, (1 - p1) / (1 - e))
w_ovl <- ifelse(t == 1, 1 - e, e)
keep <- e >= 0.05 & e <= 0.95
p1k <- mean(t[keep])
w_trim <- ifelse(keep, ifelse(t == 1, p1k / e, (1 - p1k) / (1 - e)), 0)
weights <- data.frame(row = seq_len(nrow(d)) - 1, ps = e, ATT = w_att, ATE = w_ate, overlap = w_ovl,
                      ATE_trim05 = w_trim)

# ---- balance ------------------------------------------------------------------------------
wmean <- function(x, w) sum(w * x) / sum(w)
wvar <- function(x, w) { m <- wmean(x, w); sum(w * (x - m)^2) * sum(w) / (sum(w)^2 - sum(w^2)) }
cols <- list()
for (lev in levels(d$client_group))
  cols[[paste0("client_group|", lev)]] <- list(x = as.numeric(d$client_group == lev), num = FALSE)
cols[["age|"]] <- list(x = d$age, num = TRUE)
for (lev in levels(d$sex)) cols[[paste0("sex|", lev)]] <- list(x = as.numeric(d$sex == lev), num = FALSE)
cols[["y_bl|"]] <- list(x = d$y_bl, num = TRUE)
bal <- NULL
for (est in c("ATT", "ATE", "overlap")) {
  w <- weights[[est]]
  for (nm in names(cols)) {
    x <- cols[[nm]]$x
    v1 <- var(x[t == 1]); v0 <- var(x[t == 0])
    den <- if (est == "ATT") sqrt(v1) else sqrt((v1 + v0) / 2)
    smd_b <- (mean(x[t == 1]) - mean(x[t == 0])) / den
    smd_a <- (wmean(x[t == 1], w[t == 1]) - wmean(x[t == 0], w[t == 0])) / den
    vr_b <- if (cols[[nm]]$num) v1 / v0 else NA
    vr_a <- if (cols[[nm]]$num) wvar(x[t == 1], w[t == 1]) / wvar(x[t == 0], w[t == 0]) else NA
    parts <- strsplit(nm, "|", fixed = TRUE)[[1]]
    bal <- rbind(bal, data.frame(estimand = est, covariate = parts[1], level = ifelse(length(parts) > 1, parts[2], ""),
                                 smd_before = smd_b, smd_after = smd_a, variance_ratio_before = vr_b,
                                 variance_ratio_after = vr_a))
  }
}

# ---- weighted outcome regression: survey::svyglm, agencies as PSUs --------------------------
effects <- NULL
for (est in c("unweighted", "ATT", "ATE", "overlap", "ATE_trim05")) {
  for (adj in c("baseline", "full")) {
    dd <- d
    dd$w <- if (est == "unweighted") 1 else weights[[est]]
    dd <- dd[dd$w > 0, ]
    des <- svydesign(ids = ~site_id, weights = ~w, data = dd)
    f <- if (adj == "baseline") y ~ treated + y_bl else y ~ treated + y_bl + client_group + age + sex
    m <- svyglm(f, design = des)
    b <- coef(m)[["treated"]]; se <- sqrt(vcov(m)["treated", "treated"]); df <- m$df.residual
    q <- qt(0.975, df)
    effects <- rbind(effects, data.frame(weights = est, adjustment = adj, estimate = b, se = se, df = df,
                                         ci_low = b - q * se, ci_high = b + q * se, n = nrow(dd)))
  }
}

# ---- E-value of a standardised difference (VanderWeele & Ding 2017) --------------------------
evalue_rr <- function(rr) { if (rr < 1) rr <- 1 / rr; rr + sqrt(rr * (rr - 1)) }
ev <- NULL
for (case in list(c(0.5, 0.2, 0.8), c(-0.3, -0.6, -0.05), c(0.2, -0.1, 0.5))) {
  dd <- case[1]; lo <- case[2]; hi <- case[3]
  ci <- if (lo <= 0 && hi >= 0) 1 else evalue_rr(exp(0.91 * ifelse(dd > 0, lo, hi)))
  ev <- rbind(ev, data.frame(d = dd, d_ci_low = lo, d_ci_high = hi, rr_approx = exp(0.91 * dd),
                             e_value = evalue_rr(exp(0.91 * dd)), e_value_ci = ci))
}

w <- function(x, f) write.csv(x, file.path(gdir, f), row.names = FALSE)
w(model, "propensity_model.csv")
w(weights, "propensity_weights.csv")
w(bal, "propensity_balance.csv")
w(effects, "propensity_effects.csv")
w(ev, "propensity_evalue.csv")
cat("survey", as.character(packageVersion("survey")), "\n")
