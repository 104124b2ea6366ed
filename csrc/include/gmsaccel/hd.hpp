// GMS_HD marks code compiled both as host C++ and as CUDA device code, so that the CPU build
// (which CI tests) and the GPU kernels run one definition of each algorithm.
#pragma once
#if defined(__CUDACC__)
#define GMS_HD __host__ __device__ __forceinline__
#else
#define GMS_HD inline
#endif

// Full unrolling of a fixed-trip loop in device code (registers instead of local arrays); the
// host compilers unroll on their own and would warn about the pragma.
#if defined(__CUDA_ARCH__)
#define GMS_UNROLL _Pragma("unroll")
#else
#define GMS_UNROLL
#endif

// A hint to start loading a cache line (host compilers); device code leaves it to the caches.
#if defined(__CUDA_ARCH__)
#define GMS_PREFETCH(addr) ((void)(addr))
#else
#define GMS_PREFETCH(addr) __builtin_prefetch(addr)
#endif
