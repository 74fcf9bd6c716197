module rqbench

go 1.22
