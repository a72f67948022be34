module ttpbench

go 1.19
