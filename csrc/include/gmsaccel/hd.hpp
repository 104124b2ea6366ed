// GMS_HD marks code compiled both as host C++ and as CUDA device code, so that the CPU build
// (which CI tests) and the GPU kernels run one definition of each algorithm.
#pragma once
#if defined(__CUDACC__)
#define GMS_HD __host__ __device__ __forceinline__
#else
#define GMS_HD inline
#endif
