# Makes the config tree importable as m9.conf (src/m9/conf links here), so that Hydra finds it as pkg://m9.conf
# in a checkout and in an installed wheel alike. It holds no code.
