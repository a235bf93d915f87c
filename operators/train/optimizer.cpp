#include "optimizer.hpp"

namespace loom::ops::train {

double learning_rate(const optimizer_spec& s, int64_t epoch, int64_t epochs) {
  switch (s.schedule) {
    case schedule_kind::none: return s.lr;
    case schedule_kind::step: return s.lr * std::pow(s.gamma, static_cast<double>(epoch / s.step_size));
    case schedule_kind::cosine:
      return s.lr * 0.5 * (1.0 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(epochs)));
  }
  return s.lr;
}

namespace {

// The hot loops, one clone per instruction set; the sum of the gradient parts first
// (in order), then the element's update, exactly as written (no contraction to FMA:
// the library is compiled with -ffp-contract=off; -fno-math-errno lets sqrt vectorize).
#define LOOM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/// The gradient of element i: the parts summed in order.
inline float grad(const float* const* g, size_t parts, size_t i) {
  float gi = g[0][i];
  for (size_t k = 1; k < parts; ++k)
    gi += g[k][i];
  return gi;
}

LOOM_CLONES void sgd_loop(float* __restrict p, float* __restrict v, const float* const* g, size_t parts, size_t lo,
                          size_t hi, float mu, float lr) {
  if (parts == 1) { // the common cases spelled out, so they vectorize
    const float* __restrict g0 = g[0];
    for (size_t i = lo; i < hi; ++i) {
      v[i] = mu * v[i] + g0[i];
      p[i] -= lr * v[i];
    }
  } else if (parts == 2) {
    const float* __restrict g0 = g[0];
    const float* __restrict g1 = g[1];
    for (size_t i = lo; i < hi; ++i) {
      v[i] = mu * v[i] + (g0[i] + g1[i]);
      p[i] -= lr * v[i];
    }
  } else {
    for (size_t i = lo; i < hi; ++i) {
      v[i] = mu * v[i] + grad(g, parts, i);
      p[i] -= lr * v[i];
    }
  }
}

LOOM_CLONES void adam_loop(float* __restrict p, float* __restrict m, float* __restrict v, const float* const* g,
                           size_t parts, size_t lo, size_t hi, float b1, float b2, float step, float inv_sqrt_bc2,
                           float eps) {
  const float c1 = 1.0f - b1, c2 = 1.0f - b2;
#define LOOM_ADAM(gi)                                                                                       \
  {                                                                                                         \
    const float gv = (gi);                                                                                  \
    const float mi = b1 * m[i] + c1 * gv;                                                                   \
    const float vi = b2 * v[i] + c2 * gv * gv;                                                              \
    m[i] = mi;                                                                                              \
    v[i] = vi;                                                                                              \
    p[i] -= step * mi / (std::sqrt(vi) * inv_sqrt_bc2 + eps);                                               \
  }
  if (parts == 1) { // the common cases spelled out, so they vectorize
    const float* __restrict g0 = g[0];
    for (size_t i = lo; i < hi; ++i)
      LOOM_ADAM(g0[i])
  } else if (parts == 2) {
    const float* __restrict g0 = g[0];
    const float* __restrict g1 = g[1];
    for (size_t i = lo; i < hi; ++i)
      LOOM_ADAM(g0[i] + g1[i])
  } else {
    for (size_t i = lo; i < hi; ++i)
      LOOM_ADAM(grad(g, parts, i))
  }
#undef LOOM_ADAM
}

} // namespace

optimizer::optimizer(const optimizer_spec& spec, size_t size) : spec_(spec) {
  m_.assign(size, 0.0f);
  if (spec.kind == optimizer_kind::adam)
    v_.assign(size, 0.0f);
}

void optimizer::begin_step(double lr) {
  ++t_;
  if (spec_.kind == optimizer_kind::sgd) {
    a_ = static_cast<float>(lr);
    return;
  }
  const double bc1 = 1.0 - std::pow(spec_.beta1, static_cast<double>(t_));
  const double bc2 = 1.0 - std::pow(spec_.beta2, static_cast<double>(t_));
  a_ = static_cast<float>(lr / bc1);
  b_ = static_cast<float>(1.0 / std::sqrt(bc2));
}

void optimizer::update(float* params, const float* const* grads, size_t parts, size_t lo, size_t hi) {
  if (hi > m_.size() || lo > hi || parts == 0)
    throw std::logic_error("optimizer: bad update range");
  if (spec_.kind == optimizer_kind::sgd)
    sgd_loop(params, m_.data(), grads, parts, lo, hi, static_cast<float>(spec_.momentum), a_);
  else
    adam_loop(params, m_.data(), v_.data(), grads, parts, lo, hi, static_cast<float>(spec_.beta1),
              static_cast<float>(spec_.beta2), a_, b_, static_cast<float>(spec_.eps));
}

} // namespace loom::ops::train
