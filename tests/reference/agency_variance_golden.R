# Golden reference for the model-based intervals of the propensity-weighted economic evaluation
# (analysis/economics.py, economics.weighted_interval: model; analysis/agency_variance.py;
# tests/test_agency_variance.py), independent of Python.  On the participant table of the
# non-randomised example (datasets/cpi_quasi_economics.csv, written by econ_propensity_dataset.py):
# the score by glm (logit) on client_group + age + sex (factor levels sorted, first = reference),
# ATT, stabilised ATE, overlap and 0.05-trimmed stabilised ATE weights by hand (as
# econ_propensity_golden.R; missing baselines replaced by their mean over all participants).  For
# each equation (cea_qaly: cost, QALYs and the net benefit lambda x QALY - cost at 20000, 25000,
# 30000, 35000; swemwbs_total: cost and the SWEMWBS total) and each contrast f, on the complete
# cases with weight > 0 and the design [treated, baseline effect, baseline cost, client_group,
# age, sex]:
#   estimate   the treated coefficient of lm(f ~ design, weights = w);
#   a          the treated row of (X'WX)^-1 X'W;  c_b = sum over agencies (sum a_i)^2, c_w = sum a_i^2;
#   sigma's    lme4::lmer(f ~ design + treated:(client_group + age + sex) + (1 | site_id),
#              REML = TRUE) (tight optimiser tolerance): the variance model adds the arm x score
#              covariate terms to the regression's design;
#   variance   v = c_b sigma_b^2 + c_w sigma_w^2;
#   df         Satterthwaite 2 v^2 / (c' I^-1 c), I the expected REML information of
#              (sigma_b^2, sigma_w^2), I_rs = tr(P V_r P V_s) / 2 with dense n x n matrices
#              (P = V^-1 - V^-1 F (F'V^-1 F)^-1 F'V^-1, F the variance model's design, V_b = ZZ',
#              V_w = I);
#              not capped; df_max = the agencies minus the rank of the design's agency-level columns
#              (those constant within every agency: intercept, arm, client group and their
#              interactions), which the pipeline requires to be at least 1;
#   interval   estimate -/+ qt(0.975, df) sqrt(v); probability pt(estimate / sqrt(v), df).
# -> golden/econ_propensity_model.csv.  Also two simulated random-intercept data sets written here
# (datasets/agency_variance_sim.csv, seeded; 16 agencies, arm by agency, one covariate, weights
# 1 or 2): one with agency variance, one without in which lme4's REML fit is singular (sigma_b^2 =
# 0, the first seed from 1 that gives a singular fit), the same quantities for the weighted arm
# contrast of y -> golden/agency_variance_sim.csv.  Columns default_* are lme4 with its default
# optimiser tolerance (for information: how far that stops from the optimum).
#   Rscript tests/reference/agency_variance_golden.R [datasets-dir] [golden-dir]
# Measured with R 4.2.2, lme4 1.1-31, Matrix 1.5-3.
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
here <- dirname(sub("--file=", "", grep("--file=", commandArgs(FALSE), value = TRUE)))
dsdir <- if (length(args) >= 1) args[1] else file.path(here, "datasets")
gdir <- if (length(args) >= 2) args[2] else file.path(here, "golden")
options(digits = 15)

tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-15, xtol_rel = 0, ftol_rel = 0,
                                    maxeval = 1e5))

# REML variance components of y on the fixed-effects design X with a random intercept per group
reml_components <- function(y, X, g, control) {
  dd <- data.frame(y_ = y, g_ = factor(g))
  fit <- suppressMessages(suppressWarnings(lmer(y_ ~ 0 + X + (1 | g_), data = dd, REML = TRUE,
                                                control = control)))
  vc <- as.data.frame(VarCorr(fit))
  c(sb2 = vc$vcov[vc$grp == "g_"], sw2 = sigma(fit)^2, singular = isSingular(fit, tol = 1e-10))
}

# Inverse expected REML information of (sigma_b^2, sigma_w^2), dense matrices
inverse_information <- function(X, g, sb2, sw2) {
  Z <- model.matrix(~ 0 + factor(g))
  Vb <- Z %*% t(Z)
  n <- nrow(X)
  V <- sb2 * Vb + sw2 * diag(n)
  Vi <- solve(V)
  P <- Vi - Vi %*% X %*% solve(t(X) %*% Vi %*% X) %*% t(X) %*% Vi
  PV <- list(P %*% Vb, P)
  I <- matrix(0, 2, 2)
  for (r in 1:2) for (s in 1:2) I[r, s] <- sum(diag(PV[[r]] %*% PV[[s]])) / 2
  solve(I)
}

# Everything for the weighted contrast of y: WLS estimate, a, REML, v, Satterthwaite df, interval
contrast <- function(y, X, w, g, arm = "treated", F = X) {
  fit <- lm(y ~ 0 + X, weights = w)
  est <- unname(coef(fit)[paste0("X", arm)])
  k <- which(colnames(X) == arm)
  a <- (solve(t(X) %*% (w * X)) %*% t(w * X))[k, ]
  cb <- sum(tapply(a, g, sum)^2)
  cw <- sum(a^2)
  rc <- reml_components(y, F, g, tight)
  rd <- reml_components(y, F, g, lmerControl())
  v <- cb * rc[["sb2"]] + cw * rc[["sw2"]]
  cc <- c(cb, cw)
  df_satt <- 2 * v^2 / drop(t(cc) %*% inverse_information(F, g, rc[["sb2"]], rc[["sw2"]]) %*% cc)
  # at most the agencies minus the rank of F's agency-level columns (constant within every agency)
  const <- apply(F, 2, function(x) all(tapply(x, g, function(z) max(z) - min(z)) <= 1e-9 * max(1, abs(x))))
  agency_means <- apply(F[, const, drop = FALSE], 2, function(x) tapply(x, g, mean))
  df_max <- length(unique(g)) - if (any(const)) qr(agency_means)$rank else 0
  df <- df_satt  # not capped (the cap was measured and not adopted); df_max is the refusal check's
  se <- sqrt(v)
  q <- qt(0.975, df)
  data.frame(estimate = est, se = se, df = df, df_satterthwaite = df_satt, df_max = df_max, ci_low = est - q * se, ci_high = est + q * se,
             probability = pt(est / se, df), sigma_b2 = rc[["sb2"]], sigma_w2 = rc[["sw2"]],
             singular = as.logical(rc[["singular"]]), c_b = cb, c_w = cw, n = length(y),
             default_sigma_b2 = rd[["sb2"]], default_sigma_w2 = rd[["sw2"]])
}

# ---------------------------------------------------------------- the example
d <- read.csv(file.path(dsdir, "cpi_quasi_economics.csv"), stringsAsFactors = FALSE)
d$client_group <- factor(d$client_group)  # levels sorted, first = reference (as covariate_matrix)
d$sex <- factor(d$sex)
imp <- function(x) ifelse(is.na(x), mean(x, na.rm = TRUE), x)
d$cost_bl_i <- imp(d$cost_bl)
d$utility_bl_i <- imp(d$utility_bl)
d$swemwbs_bl_i <- imp(d$swemwbs_bl)
t <- d$treated

weights_for <- function(e, t, estimand, trim = 0) {
  keep <- if (trim > 0) e >= trim & e <= 1 - trim else rep(TRUE, length(e))
  p1 <- sum(t[keep]) / sum(keep)
  w <- switch(estimand,
              ATT = ifelse(t == 1, 1, e / (1 - e)),
              ATE = ifelse(t == 1, p1 / e, (1 - p1) / (1 - e)),
              overlap = ifelse(t == 1, 1 - e, e))
  ifelse(keep, w, 0)
}

score <- glm(treated ~ client_group + age + sex, family = binomial, data = d,
             control = glm.control(epsilon = 1e-14, maxit = 200))
e <- fitted(score)
cases <- list(ATT = list("ATT", 0), ATE = list("ATE", 0), overlap = list("overlap", 0),
              ATE_trim05 = list("ATE", 0.05))
equations <- list(cea_qaly = list(effect = "qaly", bl = "utility_bl_i"),
                  swemwbs_total = list(effect = "swemwbs", bl = "swemwbs_bl_i"))
lambdas <- c(20000, 25000, 30000, 35000)

# One weighting and equation: the rows analysed (complete, weight > 0), the regression's design X,
# the variance model's design F (the same terms and arm x score covariate terms) and the contrasts
analysed <- function(w, eqn) {
  eq <- equations[[eqn]]
  cc <- !is.na(d$cost) & !is.na(d[[eq$effect]]) & w > 0
  dd <- d[cc, ]
  X <- model.matrix(as.formula(paste("~ treated +", eq$bl, "+ cost_bl_i + client_group + age + sex")), dd)
  colnames(X)[1] <- "intercept"
  stopifnot(qr(X)$rank == ncol(X))
  F <- model.matrix(as.formula(paste("~ treated +", eq$bl, "+ cost_bl_i + client_group + age + sex",
                                     "+ treated:client_group + treated:age + treated:sex")), dd)
  stopifnot(qr(F)$rank == ncol(F))
  contrasts <- list(delta_cost = list(dd$cost, NA), delta_effect = list(dd[[eq$effect]], NA))
  if (eqn == "cea_qaly")
    for (lam in lambdas) contrasts[[paste0("inmb_", lam)]] <- list(lam * dd$qaly - dd$cost, lam)
  list(cc = cc, dd = dd, X = X, F = F, contrasts = contrasts)
}

out <- NULL
for (nm in names(cases)) {
  w <- weights_for(e, t, cases[[nm]][[1]], cases[[nm]][[2]])
  for (eqn in names(equations)) {
    a <- analysed(w, eqn)
    cc <- a$cc; dd <- a$dd; X <- a$X; F <- a$F; contrasts <- a$contrasts
    for (ms in names(contrasts)) {
      r <- contrast(contrasts[[ms]][[1]], X, w[cc], dd$site_id, F = F)
      out <- rbind(out, cbind(weighting = nm, equation = eqn,
                              measure = if (startsWith(ms, "inmb")) "inmb" else ms,
                              lambda = contrasts[[ms]][[2]], r,
                              n_trimmed = sum(w == 0), n_intervention = sum(dd$treated)))
    }
  }
}
write.csv(out, file.path(gdir, "econ_propensity_model.csv"), row.names = FALSE)

# ---------------------------------------------------------------- within-agency variance per cell
# (economics.WITHIN_BY_CELL): the same contrasts with V_j = sigma_b^2 11' + diag(sigma^2_cell(i)),
# nlme::lme(f ~ F, random = ~ 1 | site_id, weights = varIdent(form = ~ 1 | cell), REML), the cell
# being arm x client_group x sex (labels "intervention|mental_health|female"), cells of fewer than
# 10 participants analysed merged, smallest first, with the other cell of the same arm sharing
# the most leading levels with it, the smallest of those (labels joined by "+", sorted);
# v = c' (sigma_b^2, sigma_1^2..sigma_K^2) with c = (sum_j (sum a_i)^2, sum_{cell k} a_i^2 ...);
# Satterthwaite 2 v^2 / (c' I^-1 c), I the expected REML information with dense matrices
# (V_0 = ZZ', V_k = diag(1{cell = k})); capped as above.
# -> golden/econ_propensity_model_cells.csv and the cell variances in
# golden/econ_propensity_model_cells_components.csv.
suppressPackageStartupMessages(library(nlme))
shared_levels <- function(a, b) {
  lead <- function(x, y) {
    x <- strsplit(x, "|", fixed = TRUE)[[1]]; y <- strsplit(y, "|", fixed = TRUE)[[1]]
    k <- 0
    for (i in seq_len(min(length(x), length(y)))) { if (x[i] != y[i]) break; k <- k + 1 }
    k
  }
  max(outer(strsplit(a, "+", fixed = TRUE)[[1]], strsplit(b, "+", fixed = TRUE)[[1]], Vectorize(lead)))
}
merge_cells <- function(cell, arm, minimum = 10) {
  for (a in unique(arm)) {
    repeat {
      tab <- table(cell[arm == a])
      tab <- tab[order(names(tab), method = "radix")]
      if (length(tab) < 2 || min(tab) >= minimum) break
      small <- names(tab)[which.min(tab)]  # the first of the smallest in sorted order
      others <- setdiff(names(tab), small)
      sh <- sapply(others, function(o) shared_levels(small, o))
      cand <- others[sh == max(sh)]
      other <- cand[order(as.numeric(tab[cand]), cand, method = "radix")][1]
      cell[arm == a & cell %in% c(small, other)] <- paste(sort(c(small, other), method = "radix"), collapse = "+")
    }
  }
  cell
}
inverse_information_cells <- function(X, g, cell, sb2, s2) {
  Z <- model.matrix(~ 0 + factor(g))
  levs <- sort(unique(cell), method = "radix")
  Vs <- c(list(Z %*% t(Z)), lapply(levs, function(k) diag(as.numeric(cell == k))))
  V <- sb2 * Vs[[1]] + diag(s2[match(cell, levs)])
  Vi <- solve(V)
  P <- Vi - Vi %*% X %*% solve(t(X) %*% Vi %*% X) %*% t(X) %*% Vi
  PV <- lapply(Vs, function(M) P %*% M)
  K <- length(Vs)
  I <- matrix(0, K, K)
  for (r in 1:K) for (s in 1:K) I[r, s] <- sum(PV[[r]] * t(PV[[s]])) / 2
  solve(I)
}
contrast_cells <- function(y, X, w, g, cell, arm = "treated", F = X) {
  fit <- lm(y ~ 0 + X, weights = w)
  est <- unname(coef(fit)[paste0("X", arm)])
  k <- which(colnames(X) == arm)
  a <- (solve(t(X) %*% (w * X)) %*% t(w * X))[k, ]
  levs <- sort(unique(cell), method = "radix")
  dd <- data.frame(y_ = y, g_ = factor(g), cell_ = factor(cell, levels = levs))
  dd$F_ <- F
  m <- lme(y_ ~ 0 + F_, random = ~ 1 | g_, weights = varIdent(form = ~ 1 | cell_), data = dd, method = "REML",
           control = lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, tolerance = 1e-12,
                                msTol = 1e-14, msMaxEval = 5000, returnObject = TRUE))
  sb2 <- as.numeric(getVarCov(m))
  ratio <- coef(m$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)[levs]
  s2 <- m$sigma^2 * ratio^2
  cb <- sum(tapply(a, g, sum)^2)
  ck <- sapply(levs, function(l) sum(a[cell == l]^2))
  cc <- c(cb, ck)
  v <- sum(cc * c(sb2, s2))
  df_satt <- 2 * v^2 / drop(t(cc) %*% inverse_information_cells(F, g, cell, sb2, s2) %*% cc)
  const <- apply(F, 2, function(x) all(tapply(x, g, function(z) max(z) - min(z)) <= 1e-9 * max(1, abs(x))))
  agency_means <- apply(F[, const, drop = FALSE], 2, function(x) tapply(x, g, mean))
  df_max <- length(unique(g)) - if (any(const)) qr(agency_means)$rank else 0
  df <- df_satt  # not capped, as the pipeline
  se <- sqrt(v)
  q <- qt(0.975, df)
  list(row = data.frame(estimate = est, se = se, df = df, df_satterthwaite = df_satt, df_max = df_max,
                        ci_low = est - q * se, ci_high = est + q * se, probability = pt(est / se, df),
                        sigma_b2 = sb2, within = sum(s2 * table(cell)[levs]) / length(y), n = length(y),
                        reml_loglik = as.numeric(logLik(m))),
       cells = data.frame(cell = levs, n = as.integer(table(cell)[levs]), sigma2 = unname(s2), c = unname(ck)))
}
out <- NULL
comps <- NULL
for (nm in names(cases)) {
  w <- weights_for(e, t, cases[[nm]][[1]], cases[[nm]][[2]])
  for (eqn in names(equations)) {
    a <- analysed(w, eqn)
    cc <- a$cc; dd <- a$dd; X <- a$X; F <- a$F; contrasts <- a$contrasts
    arm <- ifelse(dd$treated == 1, "intervention", "comparison")
    cell <- merge_cells(paste(arm, dd$client_group, dd$sex, sep = "|"), arm)
    for (ms in names(contrasts)) {
      r <- contrast_cells(contrasts[[ms]][[1]], X, w[cc], dd$site_id, cell, F = F)
      key <- data.frame(weighting = nm, equation = eqn, measure = if (startsWith(ms, "inmb")) "inmb" else ms,
                        lambda = contrasts[[ms]][[2]])
      out <- rbind(out, cbind(key, r$row, n_intervention = sum(dd$treated)))
      comps <- rbind(comps, cbind(key, r$cells))
    }
  }
}
write.csv(out, file.path(gdir, "econ_propensity_model_cells.csv"), row.names = FALSE)
write.csv(comps, file.path(gdir, "econ_propensity_model_cells_components.csv"), row.names = FALSE)

# ---------------------------------------------------------------- simulated random-intercept data
simulate <- function(seed, sb) {
  set.seed(seed)
  G <- 16
  sizes <- sample(6:14, G, replace = TRUE)
  g <- rep(sprintf("S%02d", 1:G), sizes)
  gi <- rep(1:G, sizes)
  treated <- rep(rep(0:1, length.out = G), sizes)
  x <- rnorm(length(g))
  y <- 10 + 2 * treated + 1.5 * x + rnorm(G, 0, sb)[gi] + rnorm(length(g), 0, 2)
  data.frame(site_id = g, treated = treated, x = x, w = ifelse(x > 0, 2, 1), y = y)
}
sim_fit <- function(s) {
  X <- model.matrix(~ treated + x, s)
  colnames(X)[1] <- "intercept"
  contrast(s$y, X, s$w, s$site_id)
}
seed <- 1
repeat {  # without agency variance: the first seed whose REML fit is singular
  s0 <- simulate(seed, 0)
  if (sim_fit(s0)$singular) break
  seed <- seed + 1
}
s1 <- simulate(20261205, 1.5)
# written, then read back so that the reference is computed on the values the test reads
simfile <- file.path(dsdir, "agency_variance_sim.csv")
write.csv(rbind(cbind(case = "agency_variance", s1), cbind(case = "boundary", s0)), simfile, row.names = FALSE)
s <- read.csv(simfile, stringsAsFactors = FALSE)
r1 <- sim_fit(s[s$case == "agency_variance", ])
r0 <- sim_fit(s[s$case == "boundary", ])
stopifnot(r0$singular, r0$sigma_b2 == 0, !r1$singular)
sims <- rbind(cbind(case = "agency_variance", seed = 20261205, r1), cbind(case = "boundary", seed = seed, r0))
write.csv(sims, file.path(gdir, "agency_variance_sim.csv"), row.names = FALSE)
cat("R", as.character(getRversion()), "lme4", as.character(packageVersion("lme4")), "nlme",
    as.character(packageVersion("nlme")), "\n")
