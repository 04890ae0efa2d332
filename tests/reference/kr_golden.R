# Reference Kenward-Roger inference for analysis/lmm.py: pbkrtest (vcovAdj, Lb_ddf).
#
# For every case and every contrast (each fixed-effect coefficient, plus named contrasts)
# writes golden/kr_<case>.csv with the estimate, the KR-adjusted SE
# sqrt(L vcovAdj L'), the KR df (Lb_ddf), t, p and 95% CI, and golden/kr_<case>_vcov.csv
# with the full adjusted covariance matrix. Cross-checks inside R: lmerTest's
# contest(ddf = "Kenward-Roger") and pbkrtest's KRmodcomp give the same SE/df and F = t^2.
# Fits use the same tight optimiser settings as lmm_golden.R. golden/kr_demo.csv: the
# embedded demo's primary models and ANCOVAs (as demo_golden.R) with KR inference.
#
# Usage: Rscript kr_golden.R <dataset_dir> <golden_dir>

args <- commandArgs(trailingOnly = TRUE)
data_dir <- if (length(args) >= 1) args[1] else "datasets"
out_dir <- if (length(args) >= 2) args[2] else "golden"
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
  library(pbkrtest)
})

fmt <- function(x) {
  if (is.character(x)) return(x)
  ifelse(is.na(x), "NA", sprintf("%.17g", x))
}
write_table <- function(df, name) {
  for (nm in names(df)) df[[nm]] <- fmt(df[[nm]])
  write.csv(df, file.path(out_dir, name), row.names = FALSE, quote = TRUE)
}
tight <- lmerControl(optimizer = "nloptwrap",
                     optCtrl = list(xtol_abs = 1e-13, ftol_abs = 1e-15,
                                    xtol_rel = 0, ftol_rel = 0, maxeval = 1e5),
                     check.conv.singular = "ignore")
read <- function(name) read.csv(file.path(data_dir, name), stringsAsFactors = FALSE)

kr_case <- function(case, formula, data, contrasts = list()) {
  fit <- lmerTest::lmer(formula, data = data, REML = TRUE, control = tight)
  beta <- fixef(fit)
  p <- length(beta)
  V0 <- as.matrix(vcov(fit))
  Vadj <- vcovAdj(fit)
  VA <- as.matrix(Vadj)
  Ls <- lapply(seq_len(p), function(i) { L <- numeric(p); L[i] <- 1; L })
  names(Ls) <- names(beta)
  wts <- as.list(paste0(names(beta), "=1"))
  for (nm in names(contrasts)) {
    w <- contrasts[[nm]]
    stopifnot(all(names(w) %in% names(beta)))
    L <- numeric(p); names(L) <- names(beta); L[names(w)] <- unlist(w)
    Ls[[nm]] <- unname(L)
    wts[[length(wts) + 1]] <- paste(names(w), fmt(unlist(w)), sep = "=", collapse = ";")
  }
  rows <- lapply(seq_along(Ls), function(k) {
    L <- Ls[[k]]
    est <- sum(L * beta)
    se <- sqrt(drop(t(L) %*% VA %*% L))
    df <- Lb_ddf(L, V0, Vadj)
    # cross-checks: lmerTest's KR t-test and pbkrtest's KR F test of the same contrast
    ct <- contest(fit, L, joint = FALSE, ddf = "Kenward-Roger")
    stopifnot(isTRUE(all.equal(ct$`Std. Error`, se, tolerance = 1e-10)),
              isTRUE(all.equal(ct$df, df, tolerance = 1e-10)))
    kr <- KRmodcomp(fit, matrix(L, nrow = 1))
    stopifnot(isTRUE(all.equal(kr$stats$ddf, df, tolerance = 1e-8)),
              isTRUE(all.equal(kr$stats$Fstat, (est / se)^2 * kr$stats$F.scaling,
                               tolerance = 1e-8)))
    tval <- est / se
    q <- qt(0.975, df)
    data.frame(name = names(Ls)[k], weights = wts[[k]], estimate = est, se = se,
               se_unadjusted = sqrt(drop(t(L) %*% V0 %*% L)), df = df, t = tval,
               p_value = 2 * pt(abs(tval), df, lower.tail = FALSE),
               ci_low = est - q * se, ci_high = est + q * se,
               krmodcomp_F_scaling = kr$stats$F.scaling)
  })
  write_table(do.call(rbind, rows), paste0("kr_", case, ".csv"))
  vc <- data.frame(term = names(beta), VA, check.names = FALSE)
  names(vc) <- c("term", names(beta))
  write_table(vc, paste0("kr_", case, "_vcov.csv"))
  message(sprintf("%-18s theta=%s", case, paste(signif(getME(fit, "theta"), 4), collapse = ",")))
}

cp <- read("cluster_pilot.csv")
arm_t2 <- list(armintervention = 1, `armintervention:timet2` = 1)
kr_case("cluster_nested", y ~ arm * time + y0 + (1 | site) + (1 | participant), cp,
        list(arm_t2 = arm_t2))
kr_case("cluster_ancova", y ~ arm + y0 + (1 | site), cp[cp$time == "t1", ])
kr_case("cluster_ancova_t2", y ~ arm + y0 + (1 | site), cp[cp$time == "t2", ])
kr_case("singular", y ~ arm * time + y0 + (1 | site) + (1 | participant),
        read("singular_pilot.csv"), list(arm_t2 = arm_t2))
kr_case("boundary", y ~ arm * time + y0 + (1 | site) + (1 | participant),
        read("boundary_pilot.csv"), list(arm_t2 = arm_t2))
fs <- read("four_site_pilot.csv")
kr_case("four_site", y ~ arm * time + y0 + (1 | site) + (1 | participant), fs,
        list(arm_t2 = arm_t2))
kr_case("four_site_ancova", y ~ arm + y0 + (1 | site), fs[fs$time == "t2", ])
kr_case("individual", y ~ arm * time + y0 + (1 | participant), read("individual_trial.csv"),
        list(arm_t3 = list(armintervention = 1, `armintervention:timet3` = 1)))
ss <- read("sleepstudy.csv")
ss$Subject <- as.character(ss$Subject)
kr_case("sleepstudy", Reaction ~ Days + (1 | Subject), ss)
# --- the embedded demo (datasets/demo_linked.csv, as demo_golden.R) ----------------------
# primary repeated-measures model per outcome (and complete cases for wemwbs_total) and the
# single-follow-up ANCOVAs of wemwbs_total, with KR inference -> golden/kr_demo.csv
raw <- read.csv(file.path(data_dir, "demo_linked.csv"), stringsAsFactors = FALSE)
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
kr_row <- function(fit, L) {
  est <- sum(L * fixef(fit))
  Vadj <- vcovAdj(fit)
  se <- sqrt(drop(t(L) %*% as.matrix(Vadj) %*% L))
  df <- Lb_ddf(L, as.matrix(vcov(fit)), Vadj)
  q <- qt(0.975, df)
  data.frame(estimate = est, se = se, df = df,
             p_value = 2 * pt(abs(est / se), df, lower.tail = FALSE),
             ci_low = est - q * se, ci_high = est + q * se)
}
rows <- list()
for (y in c("wemwbs_total", "ucla3_total", "eq5d5l_index", "rguk_total")) {
  for (analysis in c("primary", "complete_case")) {
    dd <- long_for(y)
    if (analysis == "complete_case") {
      if (y != "wemwbs_total") next
      dd <- dd[dd$participant %in% names(which(table(dd$participant) == 2)), ]
    }
    fit <- lmer(y ~ time + trt_m3 + trt_m9 + y_bl + (1 | site_id) + (1 | participant),
                data = dd, REML = TRUE, control = tight)
    fe <- names(fixef(fit))
    for (tp in c("m3", "m9"))
      rows[[length(rows) + 1]] <- cbind(data.frame(outcome = y, analysis = analysis, timepoint = tp),
                                        kr_row(fit, as.numeric(fe == paste0("trt_", tp))))
  }
}
dd <- long_for("wemwbs_total")
for (tp in c("m3", "m9")) {
  fit <- lmer(y ~ treat + y_bl + (1 | site_id), data = dd[dd$timepoint == tp, ], REML = TRUE,
              control = tight)
  rows[[length(rows) + 1]] <- cbind(data.frame(outcome = "wemwbs_total", analysis = "ancova",
                                               timepoint = tp), kr_row(fit, c(0, 1, 0)))
}
write_table(do.call(rbind, rows), "kr_demo.csv")

writeLines(c(paste0("R==", R.version.string),
             paste0("lme4==", packageVersion("lme4")),
             paste0("lmerTest==", packageVersion("lmerTest")),
             paste0("pbkrtest==", packageVersion("pbkrtest")),
             paste0("Matrix==", packageVersion("Matrix"))),
           file.path(out_dir, "kr_versions.txt"))
